"""remove_identity: nodes of ops that are the identity in eval mode (OpDef.eval_identity:
identity, dropout, stochastic depth) go; their consumers read their input.

Dropout is the identity in eval mode, the semantics -O1 and -O2 preserve (they build inference
modules: batchnorm folding uses the running statistics too). Train-mode pipelines run
remove_identity_train instead, which removes only ops that are the identity in training too
(OpDef.train_identity) and keeps dropout. A node whose consumer already reads its
input as another operand stays (the IR has one edge per input pair).
"""

from __future__ import annotations

from archgraph.ir.graph import Graph
from archgraph.ops.registry import get_op
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def remove_identity(graph: Graph, *, training: bool = False) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    removed = kept = 0
    for node_id in [n.id for n in rw.order()]:
        if node_id not in rw:
            continue
        node = rw[node_id]
        op = get_op(node.op)
        if not (op.train_identity if training else op.eval_identity):
            continue
        if rw.can_redirect(node.id, node.inputs[0]):
            rw.bypass(node.id, node.inputs[0])
            removed += 1
        else:
            kept += 1
    notes = ([f"removed {removed}"] if removed else []) + (
        [f"kept {kept} (a consumer reads both it and its input)"] if kept else []
    )
    return rw.build(), Change(notes=tuple(notes))


REMOVE_IDENTITY = Pass(
    "remove_identity", "drop identity and (eval-mode) dropout nodes", remove_identity
)
REMOVE_IDENTITY_TRAIN = Pass(
    "remove_identity_train",
    "drop identity nodes (dropout stays: it acts in training)",
    lambda graph: remove_identity(graph, training=True),
)
