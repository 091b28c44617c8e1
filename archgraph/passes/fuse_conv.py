"""fuse_conv: a layer with a fused form (OpDef.fused: conv2d -> conv2d_fused, linear ->
linear_fused, archgraph.ops.fused_conv) and the pointwise work around it become one node of that
form:

- epilogue: a residual add (an op whose step is `add`) of a same-shaped value, then an
  activation (an op whose step is one the fused form's `activation` takes), each the only
  consumer of what it follows (ResNet's conv -> add -> relu; ViT's fc1 -> gelu);
- prologue (fused forms with `pre_affine`: conv2d_fused): a per-channel affine op (OpDef.affine
  on dim 1: an eval-mode batchnorm), optionally followed by an activation the form's
  `pre_activation` takes (ReLU), that only feeds the conv (DenseNet's BN-ReLU-conv).

Layers and affines with shared parameters (archgraph.ir.sharing) are left alone.
The fused node keeps the conv's id and weights (the prologue's affine becomes `pre_scale` /
`pre_shift`); consumers of the last absorbed node read it instead.
"""

from __future__ import annotations

from typing import Any

from archgraph.ir.graph import Graph, Node
from archgraph.ops.registry import OpDef, get_op
from archgraph.passes.fold_bn import node_affine
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def step_in(node: Node, allowed: tuple[Any, ...] | None) -> str | None:
    """The node's pointwise step name when it is a step without a constant and among `allowed`
    (a fused op's activation choices), else None."""
    step = get_op(node.op).as_step(node.args)
    if step is None or len(step) != 1 or allowed is None or step[0] not in allowed:
        return None
    return step[0]


def _prologue(rw: Rewriter, conv: Node, fused: OpDef) -> tuple[str, Node, str] | None:
    """(source, affine node, activation) when an affine[-activation] feeds only this conv."""
    x = rw[conv.inputs[0]]
    act = "none"
    pre_act = step_in(x, fused.args["pre_activation"].choices)
    if pre_act is not None and rw.only_consumer(x.id) == conv.id:
        act, x = pre_act, rw[x.inputs[0]]
    consumer = conv.id if act == "none" else conv.inputs[0]
    affine = get_op(x.op).affine
    if affine is None or affine.axis != 1 or x.type.rank != 4:
        return None
    if rw.only_consumer(x.id) != consumer:
        return None
    if rw.shares_params(x.id):
        return None
    return x.inputs[0], x, act


def _epilogue(
    rw: Rewriter, layer: Node, source: str, fused: OpDef
) -> tuple[str | None, str | None, list[str]]:
    """(residual input, activation, absorbed node ids in order) after the layer."""
    tail, absorbed = layer.id, []
    residual = act = None
    nxt = rw.only_consumer(tail)
    if (
        nxt is not None
        and get_op(rw[nxt].op).as_step(rw[nxt].args) == ("add",)
        and rw[nxt].type == layer.type
    ):
        other = next(i for i in rw[nxt].inputs if i != tail)
        # same type (no broadcasting), and not the conv's own input (one edge per input pair)
        if rw[other].type == layer.type and other != source:
            residual, tail = other, nxt
            absorbed.append(nxt)
            nxt = rw.only_consumer(tail)
    if nxt is not None:
        act = step_in(rw[nxt], fused.args["activation"].choices)
        if act is not None:
            absorbed.append(nxt)
    return residual, act, absorbed


def fuse_conv(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    count = prologues = 0
    for node_id in [n.id for n in rw.order()]:
        if node_id not in rw:
            continue
        layer = rw[node_id]
        form = get_op(layer.op).fused
        if form is None or rw.shares_params(layer.id):
            continue
        fused = get_op(form)
        source, pre = layer.inputs[0], None
        if "pre_affine" in fused.args:
            pre = _prologue(rw, layer, fused)
            if pre is not None:
                source = pre[0]
        residual, act, absorbed = _epilogue(rw, layer, source, fused)
        if pre is None and not absorbed:
            continue
        args: dict[str, Any] = dict(layer.args, activation=act or "none")
        args["residual"] = residual is not None
        if pre is not None:
            _, bn, pre_act = pre
            scale, shift = node_affine(rw, bn, bn.type.shape[1])
            dtype = rw.weight(layer.id, "weight").dtype
            rw.weights[f"{layer.id}.pre_scale"] = scale.to(dtype)
            rw.weights[f"{layer.id}.pre_shift"] = shift.to(dtype)
            args.update(pre_affine=True, pre_activation=pre_act)
            prologues += 1
        inputs = (source,) if residual is None else (source, residual)
        old_input = layer.inputs[0]
        tail = absorbed[-1] if absorbed else layer.id
        rw.put(rw.make(layer.id, form, inputs, **args))
        if tail != layer.id:
            rw.redirect(tail, layer.id)
            for dead in reversed(absorbed):
                rw.remove(dead)
        if pre is not None:
            rw.remove(old_input)  # the ReLU, or the batchnorm itself
            if old_input != pre[1].id:
                rw.remove(pre[1].id)
        count += 1
    notes = (f"{count} conv/linear fused ({prologues} with a BN-ReLU prologue)",) if count else ()
    return rw.build(), Change(groups_fused=count, notes=notes)


FUSE_CONV = Pass(
    "fuse_conv", "fuse conv/linear with residual add, activation and BN-ReLU prologue", fuse_conv
)
