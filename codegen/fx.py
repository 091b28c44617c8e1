"""Lowering: ir.Graph -> torch.fx.GraphModule, built directly as an fx Graph (no tracing).

fx node names are the IR ids made into identifiers ('layer1.0.conv1' -> 'layer1_0_conv1'); ops
with state become submodules installed along their dotted ids, so the module's state_dict keys
are exactly the graph's weight keys '<node id>.<param>'. Each fx node records its IR id in
`node.meta["ir_id"]` so profiles and errors speak in the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from archgraph.codegen.runtimes import runtime_of
from torch import fx, nn

from archgraph.errors import GraphError
from archgraph.ir.graph import Graph
from archgraph.ir.types import DTYPES
from archgraph.ops.registry import ParamSpec, get_op


class _Emitter:
    """What op lowerings see (archgraph.ops.registry.Emitter): emits nodes named after `ir_id`."""

    def __init__(self, graph: fx.Graph) -> None:
        self.graph = graph
        self.ir_id = ""
        self.param_owner = ""

    def _create(self, kind: str, target: Any, args: tuple, kwargs: dict | None) -> fx.Node:
        node = self.graph.create_node(
            kind, target, tuple(args), dict(kwargs or {}), name=self.ir_id.replace(".", "_")
        )
        node.meta["ir_id"] = self.ir_id
        return node

    def function(self, fn: Callable[..., Any], args: tuple, kwargs: dict | None = None) -> fx.Node:
        return self._create("call_function", fn, args, kwargs)

    def method(self, name: str, args: tuple, kwargs: dict | None = None) -> fx.Node:
        return self._create("call_method", name, args, kwargs)

    def module(self, target: str, args: tuple) -> fx.Node:
        return self._create("call_module", target, args, None)

    def own_tensor(self) -> fx.Node:
        """A get_attr of the tensor installed at the node id (the shared node's id for a node
        that shares parameters); its fx name leaves the node id itself to the node that
        produces the IR value."""
        name = f"{self.ir_id.replace('.', '_')}_tensor"
        node = self.graph.create_node("get_attr", self.param_owner, name=name)
        node.meta["ir_id"] = self.ir_id
        return node


def _install(root: nn.Module, path: str, module: nn.Module | ParamSpec) -> None:
    """Put `module` (or a node's own tensor, as a meta placeholder the weights replace) at dotted
    `path` under `root`, creating plain containers on the way."""
    *parents, leaf = path.split(".")
    owner = root
    for part in parents:
        child = owner._modules.get(part)
        if child is None:
            child = nn.Module()
            owner.add_module(part, child)
        elif type(child) is not nn.Module:
            raise GraphError(
                f"node id '{path}' nests inside node '{part}', which has parameters", node=path
            )
        owner = child
    if leaf in owner._modules:
        raise GraphError(f"node id '{path}' collides with a scope of the same name", node=path)
    if isinstance(module, nn.Module):
        owner.add_module(leaf, module)
        return
    tensor = torch.empty(module.shape, dtype=DTYPES[module.dtype], device="meta")
    if module.trainable:
        owner.register_parameter(leaf, nn.Parameter(tensor))
    else:
        owner.register_buffer(leaf, tensor)


def _class_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() else "_" for ch in name)
    return cleaned if cleaned[:1].isalpha() else f"Net_{cleaned}"


def lower(graph: Graph, *, copy_weights: bool = True) -> fx.GraphModule:
    """Lower a graph whose weights are bound (graph.weights) to an fx.GraphModule.

    The module's tensors are copies of the graph's, so training the module never changes the
    graph; a caller that owns the graph's tensors alone (compile, which bound them itself) may
    pass copy_weights=False and hand them over instead.
    """
    if graph.weights is None:
        raise GraphError(
            "the graph has no weights bound", hint="use archgraph.compile, or bind_weights(graph)"
        )
    fxg = fx.Graph()
    emit = _Emitter(fxg)
    root = nn.Module()
    values: dict[str, fx.Node] = {}
    inputs = set(graph.inputs)
    for node in graph.nodes():
        emit.ir_id, emit.param_owner = node.id, node.param_owner
        if node.id in inputs:
            values[node.id] = emit._create("placeholder", node.id.replace(".", "_"), (), None)
            continue
        op = get_op(node.op)
        xs = [values[i] for i in node.inputs]
        make_module, lower_fn = op.module, op.lower
        if make_module is None and lower_fn is None:
            runtime = runtime_of(node.op)  # a data-only op (the fused ops): the back end's
            make_module, lower_fn = runtime.module, runtime.lower
        if make_module is not None:
            if node.share is None:  # a sharing node calls its target's module
                _install(
                    root, node.id, make_module(node.args, [graph[i].type for i in node.inputs])
                )
            values[node.id] = emit.module(node.param_owner, tuple(xs))
        else:
            assert lower_fn is not None
            own = op.params(node.args, [graph[i].type for i in node.inputs]).get("")
            if own is not None and node.share is None:
                _install(root, node.id, own)
            values[node.id] = lower_fn(emit, node.args, xs)
    outs = [values[o] for o in graph.outputs]
    fxg.output(outs[0] if len(outs) == 1 else tuple(outs))
    # Modules were made on the meta device; the graph's tensors become their state.
    state = {k: v.clone() for k, v in graph.weights.items()} if copy_weights else graph.weights
    root.load_state_dict(state, strict=True, assign=True)
    _materialize_stateless(root)
    gm = fx.GraphModule(root, fxg, class_name=_class_name(graph.name))
    gm.meta["archgraph_graph"] = graph.name
    return gm


def _materialize_stateless(root: nn.Module) -> None:
    """Any tensor left on the meta device is a bug in an op's ParamSpec/module pairing."""
    for name, t in [*root.named_parameters(), *root.named_buffers()]:
        if t.device.type == "meta":
            raise GraphError(f"tensor '{name}' was not bound", hint="the op's params() misses it")


__all__ = ["lower"]
