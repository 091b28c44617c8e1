"""layout: the memory layout that pays on the device.

On the CPU (oneDNN), measured in benchmarks/bench_cpu.py: convolutions and linears run with
their weights reordered once into oneDNN's blocked layout (`prepack`) instead of on every
call, and activations in channels_last (NHWC), the layout oneDNN's convolutions compute in, so
no conv converts its input and output. So:

- every op whose fused form (OpDef.fused) or itself takes `prepack` gets prepack=true: conv2d /
  linear become conv2d_fused / linear_fused (no epilogue, same id and weights);
- a rank-4 graph input that feeds an op computing in channels_last (OpDef.channels_last: the
  convs) is converted to it once (`memory_format`); rank-4 graph outputs are handed back
  contiguous (NCHW), as -O0 returns them.

Elementwise ops, pooling and concatenation keep the layout of their inputs, so the rest of the
network stays channels_last without further conversions.
"""

from __future__ import annotations

from archgraph.ir.graph import Graph
from archgraph.ops.registry import get_op
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def layout(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    packed = converted = 0
    for node in rw.order():
        form = get_op(node.op).fused or node.op
        if "prepack" in get_op(form).args:
            args = {**node.args, "prepack": True}
            rw.put(rw.make(node.id, form, node.inputs, **args))
            packed += 1
    for node_id in list(graph.inputs):
        node = rw[node_id]
        if node.type.rank == 4 and any(
            get_op(rw[u].op).channels_last for u in rw.consumers(node_id)
        ):
            nhwc = rw.make(rw.fresh_id(f"{node_id}.channels_last"), "memory_format", (node_id,),
                           format="channels_last")  # fmt: skip
            users = rw.consumers(node_id)
            rw.put(nhwc, after=node_id)
            for user in users:
                u = rw[user]
                rw.put(u.evolve(inputs=tuple(nhwc.id if i == node_id else i for i in u.inputs)))
            converted += 1
    for i, out in enumerate(list(rw.outputs)):
        if rw[out].type.rank == 4 and out not in graph.inputs:
            nchw = rw.make(rw.fresh_id(f"{out}.contiguous"), "memory_format", (out,),
                           format="contiguous")  # fmt: skip
            rw.put(nchw, after=out)
            rw.outputs[i] = nchw.id
            converted += 1
    notes = (f"{packed} conv/linear prepacked", f"{converted} layout conversion(s)")
    return rw.build(), Change(notes=notes)


LAYOUT = Pass("layout", "prepacked weights and channels_last activations", layout)
