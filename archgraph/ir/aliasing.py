"""Which values a node may overwrite in inference.

A node may write its result into an input's storage (oneDNN adds a conv into its residual in
place) only when no one can observe the old value afterwards: the value is made by an op whose
output is its own tensor (OpDef.fresh_output: not a graph input, a view or a parameter), it is
no graph output, the writer reads it through one input only, and every other reader runs before
the writer (graph order is the lowered module's order) and returns a tensor of its own, so no
view of the value outlives it.
"""

from __future__ import annotations

from archgraph.ir.graph import Graph
from archgraph.ops.registry import get_op


def may_overwrite(graph: Graph, value: str, writer: str) -> bool:
    """The node `writer` may overwrite the value of node `value`, one of its inputs."""
    if value in graph.outputs or not get_op(graph[value].op).fresh_output:
        return False
    if graph[writer].inputs.count(value) != 1:
        return False
    position = {node_id: i for i, node_id in enumerate(graph.nx.nodes)}
    return all(
        position[reader] < position[writer] and get_op(graph[reader].op).fresh_output
        for reader in graph.consumers(value)
        if reader != writer
    )
