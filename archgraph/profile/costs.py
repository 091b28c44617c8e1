"""Analytic costs per node: each op's own cost rule, plus byte counts derived generically from the
IR types and the op's ParamSpecs (so no op file needs a second rule for memory traffic).

Definitions (docs/profile-json.md has the whole schema):
  params        trainable parameters the node owns (a node sharing another's owns none)
  active_params the params one token uses (a mixture of experts: the gate and top-k experts)
  macs          multiply-accumulates of conv, linear, matmul and attention work (the op's rule)
  macs_per_token  for a node whose output is a token sequence [N, L, D]: its active MACs (a
                mixture of experts: gate and top-k experts, no empty capacity slots) over N * L;
                the total sums these over the token nodes (None when the model has none)
  matmul_flops  2 * macs: one multiply and one add per MAC, what torch.utils.flop_counter counts
  other_flops   pointwise, normalization, softmax and pooling work (flop counters leave it out)
  flops         matmul_flops + other_flops
  bytes_read    the node's input activations plus its weights and buffers
  bytes_written the node's output activation (= activation_bytes)
  memory_access_bytes  bytes_read + bytes_written (a view such as reshape moves no data, so for
                views this is an upper bound)
  conv_mac      for conv-like nodes (an NCHW input and output and a 4-D weight) the memory access
                cost of ShuffleNet V2 / VoVNet in elements: n*h*w*(c_in + c_out) + k*k*c_in*c_out/g,
                with h, w the output size and k*k*c_in*c_out/g the weight's element count

A cost rule that cannot count a node says so by returning None or raising NotImplementedError
(an op registered without any cost rule is treated the same way). Such a node's macs and flops
are None, never zero, and `uncounted()` lists it with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from archgraph.ir.graph import Graph, Node
from archgraph.ir.types import ITEM_BYTES
from archgraph.ops.registry import Cost, OpDef, ParamSpec, get_op

_DEFAULT_COST_RULE = OpDef.__dataclass_fields__["cost"].default


@dataclass(frozen=True)
class NodeCost:
    id: str
    op: str
    shape: tuple[int, ...]
    params: int  # trainable parameters (buffers excluded)
    macs: int | None  # None: the op's cost rule could not count this node (see `reason`)
    flops: int | None  # matmul_flops + other_flops
    out_bytes: int  # the node's output activation
    bytes_read: int = 0
    weight_bytes: int = 0  # parameters and buffers the node owns
    conv_mac: int | None = None  # ShuffleNet V2 / VoVNet memory access cost, in elements
    reason: str = ""  # why macs/flops are None
    active_params: int | None = None  # params a token uses (MoE: its top-k experts); None: all
    macs_per_token: float | None = None  # token nodes [N, L, D] only (see the module docstring)

    @property
    def params_per_token(self) -> int:
        """Trainable parameters one token's computation uses (active params)."""
        return self.params if self.active_params is None else self.active_params

    @property
    def counted(self) -> bool:
        return self.macs is not None

    @property
    def matmul_flops(self) -> int | None:
        return None if self.macs is None else 2 * self.macs

    @property
    def other_flops(self) -> int | None:
        return None if self.macs is None or self.flops is None else self.flops - 2 * self.macs

    @property
    def bytes_written(self) -> int:
        return self.out_bytes

    @property
    def memory_access_bytes(self) -> int:
        return self.bytes_read + self.out_bytes


def _nbytes(spec: ParamSpec) -> int:
    return spec.numel * ITEM_BYTES[spec.dtype]


def _conv_mac(node: Node, graph: Graph, specs: dict[str, ParamSpec]) -> int | None:
    """VoVNet's MAC for a node shaped like a convolution, recognized by its types rather than its
    op name so any conv-like op (a plugin's too) gets it."""
    weight = specs.get("weight")
    if weight is None or len(weight.shape) != 4 or len(node.inputs) != 1:
        return None
    x = graph[node.inputs[0]].type
    if x.rank != 4 or node.type.rank != 4:
        return None
    n, c_out, h, w = node.type.shape
    return n * h * w * (x.shape[1] + c_out) + weight.numel


def _apply_rule(op: OpDef, node: Node, graph: Graph) -> tuple[Cost | None, str]:
    if op.cost is _DEFAULT_COST_RULE:
        return None, f"op '{op.name}' declares no cost rule"
    ins = [graph[i].type for i in node.inputs]
    try:
        cost = op.cost(node.args, ins, node.type)
    except NotImplementedError as e:
        return None, f"the cost rule of '{op.name}' cannot count it" + (f": {e}" if str(e) else "")
    if cost is None:
        return None, f"the cost rule of '{op.name}' cannot count it"
    return cost, ""


def _macs_per_token(cost: Cost | None, out_shape: tuple[int, ...]) -> float | None:
    if cost is None or len(out_shape) != 3 or out_shape[0] * out_shape[1] == 0:
        return None
    active = cost.macs if cost.active_macs is None else cost.active_macs
    return active / (out_shape[0] * out_shape[1])


def node_cost(graph: Graph, node: Node) -> NodeCost:
    op = get_op(node.op)
    ins = [graph[i].type for i in node.inputs]
    specs = op.params(node.args, ins)
    owned = node.share is None  # a node sharing parameters reads its target's, owns none
    params = sum(s.numel for s in specs.values() if s.trainable) if owned else 0
    cost, reason = _apply_rule(op, node, graph)
    weight_bytes = sum(_nbytes(s) for s in specs.values())
    return NodeCost(
        id=node.id,
        op=node.op,
        shape=node.type.shape,
        params=params,
        macs=None if cost is None else cost.macs,
        flops=None if cost is None else cost.flops,
        out_bytes=node.type.nbytes,
        bytes_read=sum(t.nbytes for t in ins) + weight_bytes,
        weight_bytes=weight_bytes if owned else 0,
        conv_mac=_conv_mac(node, graph, specs),
        reason=reason,
        active_params=params - cost.inactive_params
        if cost and cost.inactive_params and owned
        else None,
        macs_per_token=_macs_per_token(cost, node.type.shape),
    )


def node_costs(graph: Graph) -> list[NodeCost]:
    """One NodeCost per node in topological order (graph inputs included, at zero cost)."""
    return [node_cost(graph, node) for node in graph.nodes()]


def uncounted(costs: list[NodeCost]) -> list[NodeCost]:
    """The nodes whose cost rule could not count them (their macs and flops are None)."""
    return [c for c in costs if not c.counted]


def totals(costs: list[NodeCost]) -> NodeCost:
    """Sums over `costs`. MACs and FLOPs sum the counted nodes only: check `uncounted(costs)`
    before reading them as whole-model figures."""
    counted = [c for c in costs if c.counted]
    conv = [c.conv_mac for c in costs if c.conv_mac is not None]
    per_token = [c.macs_per_token for c in costs if c.macs_per_token is not None]
    return NodeCost(
        "total",
        "",
        (),
        sum(c.params for c in costs),
        sum(c.macs or 0 for c in counted),
        sum(c.flops or 0 for c in counted),
        sum(c.out_bytes for c in costs),
        bytes_read=sum(c.bytes_read for c in costs),
        weight_bytes=sum(c.weight_bytes for c in costs),
        conv_mac=sum(conv) if conv else None,
        reason=", ".join(c.id for c in costs if not c.counted),
        active_params=sum(c.params_per_token for c in costs),
        macs_per_token=sum(per_token) if per_token else None,
    )
