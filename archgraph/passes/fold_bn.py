"""fold_bn: an affine op (OpDef.affine: an eval-mode batchnorm, a constant scale) right after a
layer that takes one (OpDef.fold_axis: conv2d, linear) becomes part of that layer's weight and
bias.

    bn(conv(x)) = conv(x) * s + t,  s = gamma / sqrt(var + eps),  t = beta - mean * s
                = conv'(x) with W' = W * s (per output channel), b' = b * s + t

Value-dependent: it reads the bound weights (scale and bias in float64, stored in the weight's
dtype).
The folded layer keeps the conv's id and state_dict keys (it gains a bias when it had none);
the batchnorm's consumers read the conv. Applies when the layer's only consumer is the
batchnorm, and when the affine's channels are the layer's output channels (for linear only over
[N, features]: batchnorm's channels are dim 1); a uniform affine (axis None) folds into any; never to a
layer or affine whose parameters are shared (archgraph.ir.sharing).
"""

from __future__ import annotations

import torch

from archgraph.ir.graph import Graph, Node
from archgraph.ops.registry import get_op
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def node_affine(rw: Rewriter, node: Node, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel (scale, shift) of a node whose op is an Affine (float64, [channels])."""
    affine = get_op(node.op).affine
    assert affine is not None
    return affine.scale_shift(dict(node.args), lambda name: rw.weight(node.id, name), channels)


def _fold_target(rw: Rewriter, node: Node) -> tuple[Node, int] | None:
    """The layer before an affine node that can take it into its weights, with its output
    channel count, or None."""
    affine = get_op(node.op).affine
    if affine is None:
        return None
    layer = rw[node.inputs[0]]
    axis = get_op(layer.op).fold_axis
    if axis is None or rw.only_consumer(layer.id) != node.id:
        return None
    rank = layer.type.rank
    if affine.axis is not None and affine.axis % rank != axis % rank:
        return None  # e.g. batchnorm's channels (dim 1) are a token dim of a linear's output
    return layer, layer.type.shape[axis]


def fold_into(rw: Rewriter, layer: Node, scale: torch.Tensor, shift: torch.Tensor) -> Node:
    """Give `layer` (an op with a fold_axis) the affine: new weight and bias tensors, bias on."""
    weight = rw.weight(layer.id, "weight")
    bias = rw.weights.get(f"{layer.id}.bias")
    view = (-1,) + (1,) * (weight.dim() - 1)
    new_w = weight * scale.to(weight.dtype).reshape(view)  # one allocation, one rounding
    base = bias.double() if bias is not None else torch.zeros_like(shift)
    new_b = (base * scale + shift).to(weight.dtype)
    rw.weights[f"{layer.id}.weight"] = new_w
    rw.weights[f"{layer.id}.bias"] = new_b
    args = dict(layer.args, bias=True)
    return rw.put(rw.make(layer.id, layer.op, layer.inputs, **args))


def fold_bn(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    folded = []
    for node_id in [n.id for n in rw.order()]:
        if node_id not in rw:
            continue
        node = rw[node_id]
        target = _fold_target(rw, node)
        if target is None:
            continue
        layer, channels = target
        if rw.shares_params(layer.id) or rw.shares_params(node.id):
            continue
        fold_into(rw, layer, *node_affine(rw, node, channels))
        rw.bypass(node.id, layer.id)
        folded.append(node.id)
    notes = (f"folded {len(folded)} into their conv/linear",) if folded else ()
    return rw.build(), Change(groups_fused=len(folded), notes=notes)


FOLD_BN = Pass("fold_bn", "fold batchnorm and constant scales into the conv/linear before", fold_bn)
