"""inplace_residual: a fused conv whose residual input nobody reads afterwards adds its result
into that input's storage (conv2d_fused `residual_inplace`; on the CPU oneDNN's in-place sum
post-op) instead of into a fresh tensor.

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
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def inplace_residual(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    donated = 0
    for node in graph.nodes():
        if node.op != "conv2d_fused" or not node.args["residual"] or node.args["residual_inplace"]:
            continue
        if may_overwrite(graph, node.inputs[node.args["parts"]], node.id):
            rw.put(node.evolve(args={**node.args, "residual_inplace": True}))
            donated += 1
    notes = (f"{donated} conv(s) add into their residual's buffer",) if donated else ()
    return rw.build(), Change(notes=notes)


INPLACE_RESIDUAL = Pass(
    "inplace_residual", "convs add into a residual nothing reads afterwards", inplace_residual
)
