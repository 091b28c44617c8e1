"""fold_bn: an eval-mode batchnorm (or a constant scale) right after a conv2d or linear becomes
part of that layer's weight and bias.

    bn(conv(x)) = conv(x) * s + t,  s = gamma / sqrt(var + eps),  t = beta - mean * s
                = conv'(x) with W' = W * s (per output channel), b' = b * s + t

Value-dependent: it reads the bound weights (scale and bias in float64, stored in the weight's
dtype).
The folded layer keeps the conv's id and state_dict keys (it gains a bias when it had none);
the batchnorm's consumers read the conv. Applies when the layer's only consumer is the
batchnorm, and for linear only over [N, features] (batchnorm's channels are dim 1); never to a
layer or batchnorm whose parameters are shared (archgraph.ir.sharing).
"""

from __future__ import annotations

import torch

from archgraph.ir.graph import Graph, Node
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter

LAYERS = ("conv2d", "linear")


def bn_scale_shift(rw: Rewriter, bn: Node) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode batchnorm as a per-channel affine (float64)."""
    mean = rw.weight(bn.id, "running_mean").double()
    var = rw.weight(bn.id, "running_var").double()
    scale = torch.rsqrt(var + bn.args["eps"])
    if bn.args["affine"]:
        scale = scale * rw.weight(bn.id, "weight").double()
        shift = rw.weight(bn.id, "bias").double() - mean * scale
    else:
        shift = -mean * scale
    return scale, shift


def _affine_of(rw: Rewriter, node: Node) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The per-channel (scale, shift) a foldable follower applies, or None."""
    layer = rw[node.inputs[0]]
    if node.op == "batchnorm":
        if layer.op == "linear" and layer.type.rank != 2:
            return None  # batchnorm's channels would be a token dim, not the features
        return bn_scale_shift(rw, node)
    if node.op == "scale":
        channels = layer.type.shape[1] if layer.op == "conv2d" else layer.type.shape[-1]
        factor = torch.full((channels,), node.args["factor"], dtype=torch.float64)
        return factor, torch.zeros(channels, dtype=torch.float64)
    return None


def fold_into(rw: Rewriter, layer: Node, scale: torch.Tensor, shift: torch.Tensor) -> Node:
    """Give `layer` (conv2d or linear) the affine: new weight and bias tensors, bias on."""
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
        if node.op not in ("batchnorm", "scale"):
            continue
        layer = rw[node.inputs[0]]
        if layer.op not in LAYERS or rw.only_consumer(layer.id) != node.id:
            continue
        if rw.shares_params(layer.id) or rw.shares_params(node.id):
            continue
        affine = _affine_of(rw, node)
        if affine is None:
            continue
        fold_into(rw, layer, *affine)
        rw.bypass(node.id, layer.id)
        folded.append(node.id)
    notes = (f"folded {len(folded)} into their conv/linear",) if folded else ()
    return rw.build(), Change(groups_fused=len(folded), notes=notes)


FOLD_BN = Pass("fold_bn", "fold batchnorm and constant scales into the conv/linear before", fold_bn)
