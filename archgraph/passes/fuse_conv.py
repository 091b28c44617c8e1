"""fuse_conv: a conv2d or linear and the pointwise work around it become one conv2d_fused /
linear_fused node (archgraph.ops.fused_conv):

- epilogue: a residual `add` of a same-shaped value, then an activation, each the only
  consumer of what it follows (ResNet's conv -> add -> relu; ViT's fc1 -> gelu);
- prologue (conv2d): a batchnorm, optionally followed by a ReLU, that only feeds the conv
  (DenseNet's BN-ReLU-conv).

Layers and batchnorms with shared parameters (archgraph.ir.sharing) are left alone.
The fused node keeps the conv's id and weights (the prologue batchnorm becomes `pre_scale` /
`pre_shift`); consumers of the last absorbed node read it instead.
"""

from __future__ import annotations

from typing import Any

from archgraph.ir.graph import Graph, Node
from archgraph.ops.fused import UNARY_STEP_OF_OP
from archgraph.ops.fused_conv import ACTIVATIONS
from archgraph.passes.fold_bn import bn_scale_shift
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter

FUSED_OF = {"conv2d": "conv2d_fused", "linear": "linear_fused"}


def activation_of(node: Node) -> str | None:
    """The fused activation name for an activation node, or None."""
    rule = UNARY_STEP_OF_OP.get(node.op)
    if rule is None:
        return None
    step = rule(node.args)
    return step[0] if len(step) == 1 and step[0] in ACTIVATIONS else None


def _prologue(rw: Rewriter, conv: Node) -> tuple[str, Node, str] | None:
    """(source, batchnorm, activation) when a BN[-ReLU] feeds only this conv."""
    x = rw[conv.inputs[0]]
    act = "none"
    if x.op == "relu" and rw.only_consumer(x.id) == conv.id:
        act, x = "relu", rw[x.inputs[0]]
    consumer = conv.id if act == "none" else conv.inputs[0]
    if x.op != "batchnorm" or x.type.rank != 4 or rw.only_consumer(x.id) != consumer:
        return None
    if rw.shares_params(x.id):
        return None
    return x.inputs[0], x, act


def _epilogue(rw: Rewriter, layer: Node, source: str) -> tuple[str | None, str | None, list[str]]:
    """(residual input, activation, absorbed node ids in order) after the layer."""
    tail, absorbed = layer.id, []
    residual = act = None
    nxt = rw.only_consumer(tail)
    if nxt is not None and rw[nxt].op == "add" and rw[nxt].type == layer.type:
        other = next(i for i in rw[nxt].inputs if i != tail)
        # same type (no broadcasting), and not the conv's own input (one edge per input pair)
        if rw[other].type == layer.type and other != source:
            residual, tail = other, nxt
            absorbed.append(nxt)
            nxt = rw.only_consumer(tail)
    if nxt is not None:
        act = activation_of(rw[nxt])
        if act is not None:
            absorbed.append(nxt)
    return residual, act, absorbed


def fuse_conv(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    fused = prologues = 0
    for node_id in [n.id for n in rw.order()]:
        if node_id not in rw:
            continue
        layer = rw[node_id]
        if layer.op not in FUSED_OF or rw.shares_params(layer.id):
            continue
        source, pre = layer.inputs[0], None
        if layer.op == "conv2d":
            pre = _prologue(rw, layer)
            if pre is not None:
                source = pre[0]
        residual, act, absorbed = _epilogue(rw, layer, source)
        if pre is None and not absorbed:
            continue
        args: dict[str, Any] = dict(layer.args, activation=act or "none")
        args["residual"] = residual is not None
        if pre is not None:
            _, bn, pre_act = pre
            scale, shift = bn_scale_shift(rw, bn)
            dtype = rw.weight(layer.id, "weight").dtype
            rw.weights[f"{layer.id}.pre_scale"] = scale.to(dtype)
            rw.weights[f"{layer.id}.pre_shift"] = shift.to(dtype)
            args.update(pre_affine=True, pre_activation=pre_act)
            prologues += 1
        inputs = (source,) if residual is None else (source, residual)
        old_input = layer.inputs[0]
        tail = absorbed[-1] if absorbed else layer.id
        rw.put(rw.make(layer.id, FUSED_OF[layer.op], inputs, **args))
        if tail != layer.id:
            rw.redirect(tail, layer.id)
            for dead in reversed(absorbed):
                rw.remove(dead)
        if pre is not None:
            rw.remove(old_input)  # the ReLU, or the batchnorm itself
            if old_input != pre[1].id:
                rw.remove(pre[1].id)
        fused += 1
    notes = (f"{fused} conv/linear fused ({prologues} with a BN-ReLU prologue)",) if fused else ()
    return rw.build(), Change(groups_fused=fused, notes=notes)


FUSE_CONV = Pass(
    "fuse_conv", "fuse conv/linear with residual add, activation and BN-ReLU prologue", fuse_conv
)
