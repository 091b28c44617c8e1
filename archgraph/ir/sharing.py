"""Parameter sharing by name: a node with `share: <node id>` computes its op with the named
node's parameters (WideNet shares one transformer block's attention and MLP across depth).

The shared tensors live once, under the target's id: a sharing node owns no parameters, its
lowering calls the target's module (so gradients from every use accumulate in one tensor), and
its cost row counts no parameters. A sharing node and its target have the same op and the same
arguments, and the target owns its parameters itself (no chains); the rules are checked when the
node is added (a located SpecError) and after every pass (`check_shared`).
"""

from __future__ import annotations

from archgraph.errors import SpecError, did_you_mean
from archgraph.ir.graph import Graph, Node
from archgraph.ops.registry import get_op


def _param_shapes(graph: Graph, node: Node) -> dict[str, tuple[int, ...]]:
    ins = [graph[i].type for i in node.inputs]
    return {k: s.shape for k, s in get_op(node.op).params(node.args, ins).items()}


def check_share(graph: Graph, node: Node) -> None:
    """Raise a SpecError (field 'share'; the caller adds the location) unless `node` may use the
    parameters of `node.share` in `graph`."""
    target_id = node.share
    if target_id is None:
        return
    if target_id not in graph or target_id == node.id:
        known = [n.id for n in graph.nodes() if n.op == node.op and n.share is None]
        raise SpecError(
            f"node '{node.id}' shares the parameters of unknown node '{target_id}'",
            expected=f"the id of an earlier '{node.op}' node",
            found=target_id,
            hint=did_you_mean(target_id, known) or "name the node by its full dotted id",
            field="share",
        )
    target = graph[target_id]
    if target.share is not None:
        raise SpecError(
            f"node '{target_id}' itself shares the parameters of '{target.share}'",
            expected="a node that owns its parameters",
            found=f"'{target_id}' (share: {target.share})",
            hint=f"write share: {target.share}",
            field="share",
        )
    if target.op != node.op or target.args != node.args:
        raise SpecError(
            f"node '{node.id}' cannot share the parameters of '{target_id}': they differ",
            expected=f"op '{target.op}' with {target.args}",
            found=f"op '{node.op}' with {node.args}",
            hint="a shared node repeats its target's op and arguments",
            field="share",
        )
    mine, theirs = _param_shapes(graph, node), _param_shapes(graph, target)
    if not theirs:
        raise SpecError(
            f"node '{target_id}' has no parameters to share",
            expected="a node with parameters",
            found=f"op '{target.op}'",
            field="share",
        )
    if mine != theirs:
        raise SpecError(
            f"node '{node.id}' cannot share the parameters of '{target_id}': shapes differ",
            expected=", ".join(f"{k} {list(v)}" for k, v in theirs.items()),
            found=", ".join(f"{k} {list(v)}" for k, v in mine.items()),
            hint="a shared node reads inputs of its target's widths",
            field="share",
        )


def check_shared(graph: Graph) -> None:
    """Every sharing node of a finished graph satisfies the rules (see check_share)."""
    for node in graph.nodes():
        if node.share is not None:
            try:
                check_share(graph, node)
            except SpecError as e:
                raise e.located(node.loc, node.id) from None


def sharers(graph: Graph) -> dict[str, list[str]]:
    """Target id -> the ids of the nodes that use its parameters."""
    out: dict[str, list[str]] = {}
    for node in graph.nodes():
        if node.share is not None:
            out.setdefault(node.share, []).append(node.id)
    return out
