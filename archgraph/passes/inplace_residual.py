"""inplace_residual: an op that can take its result in an input's storage (OpDef.overwrites:
conv2d_fused's residual, `residual_inplace`; on the CPU oneDNN's in-place sum post-op) does so
when nobody reads that input afterwards, instead of writing a fresh tensor.

A ResNet stage's residual stream then lives in one buffer: each block's last conv adds into the
block input it was handed, which its first conv has already read. Measured in
benchmarks/bench_cpu.py (BENCHMARKS.md): no allocation per block, and the buffer stays in cache.
Inference only: autograd may keep the residual for backward, so train mode never runs it.
archgraph.ir.aliasing.may_overwrite decides, and graph validation checks it again after every
later pass. It runs last, after the passes that move nodes or add readers.
"""

from __future__ import annotations

from archgraph.ir.aliasing import may_overwrite
from archgraph.ir.graph import Graph
from archgraph.ops.registry import get_op
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def inplace_residual(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    donated = 0
    for node in graph.nodes():
        ow = get_op(node.op).overwrites
        if ow is None or node.args[ow.flag]:
            continue
        index = ow.index(node.args)
        if index is not None and may_overwrite(graph, node.inputs[index], node.id):
            rw.put(node.evolve(args={**node.args, ow.flag: True}))
            donated += 1
    notes = (f"{donated} node(s) write into an input nothing reads afterwards",) if donated else ()
    return rw.build(), Change(notes=notes)


INPLACE_RESIDUAL = Pass(
    "inplace_residual", "convs add into a residual nothing reads afterwards", inplace_residual
)
