"""fuse_bn_act: every batchnorm becomes a training-capable batchnorm_act node
(archgraph.ops.fused_train), with the activation that is its only consumer absorbed.

The train-mode pipelines run it first among the fusions: afterwards no `batchnorm` node is
left, so the eval-mode uses of one (folding into a conv, a conv's BN prologue, an affine step
of a pointwise group, all of which read the running statistics) cannot apply, and the
batchnorm keeps computing batch statistics and updating its running statistics in training.
The fused node keeps the batchnorm's id and tensors; the activation's consumers read it.
A BN[-ReLU] over a channel concatenation, read only by a conv, gets `recompute`: in training
its output is recomputed in backward from its input (which batchnorm's backward keeps anyway)
instead of being kept for the conv's weight gradient (memory-efficient DenseNet: a dense
layer's BN-ReLU over its block's concatenation is as large as the concatenation, and all of
them together grow quadratically with depth). Elsewhere (a ResNet's BN-ReLU) the output is
kept: recomputing it would cost a normalization per layer in backward to save memory linear in
depth, which the caller did not ask to trade.
"""

from __future__ import annotations

from archgraph.ir.graph import Graph
from archgraph.ops.registry import get_op
from archgraph.passes.fuse_conv import step_in
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def fuse_bn_act(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    activations = get_op("batchnorm_act").args["activation"].choices
    converted = fused = 0
    for node_id in [n.id for n in rw.order()]:
        if node_id not in rw or rw[node_id].op != "batchnorm":
            continue
        bn = rw[node_id]
        act, nxt = "none", rw.only_consumer(bn.id)
        if nxt is not None and rw[nxt].inputs == (bn.id,):
            act = step_in(rw[nxt], activations) or "none"
        reader = nxt if act == "none" else rw.only_consumer(nxt)
        recompute = (
            act in ("none", "relu")
            and reader is not None
            and rw[reader].op == "conv2d"
            and rw[bn.inputs[0]].op == "concat"
        )
        node = rw.make(bn.id, "batchnorm_act", bn.inputs, **bn.args, activation=act,
                       recompute=recompute)  # fmt: skip
        rw.put(node)
        converted += 1
        if act != "none":
            assert nxt is not None
            rw.redirect(nxt, bn.id)
            rw.remove(nxt)
            fused += 1
    notes = (f"{converted} batchnorm(s), {fused} with their activation",) if converted else ()
    return rw.build(), Change(groups_fused=fused, notes=notes)


FUSE_BN_ACT = Pass(
    "fuse_bn_act", "batchnorm + activation as one training-capable node", fuse_bn_act
)
