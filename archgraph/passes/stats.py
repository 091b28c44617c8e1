"""What the pass reports count: activation bytes written by one forward call (an IR estimate).

Every node writes its output once, except graph inputs (given), views (narrow, buffer prefixes:
nothing) and buffer writes (only the slice they fill). A pass's "bytes saved" is this total
before minus after: intermediates a fusion no longer materializes, batchnorm outputs folded
away, re-concatenations a dense buffer replaces.
"""

from __future__ import annotations

from collections.abc import Callable

from archgraph.ir.graph import Graph, Node

_WRITES: dict[str, Callable[[Graph, Node], int]] = {
    "input": lambda g, n: 0,
    "narrow": lambda g, n: 0,
    "buffer_prefix": lambda g, n: 0,
    "buffer_write": lambda g, n: g[n.inputs[1]].type.nbytes,
    "buffer_init": lambda g, n: g[n.inputs[0]].type.nbytes,
}


def written_bytes(graph: Graph) -> int:
    total = 0
    for _, node in graph.nx.nodes(data="node"):  # a sum: no need for topological order
        rule = _WRITES.get(node.op)
        total += rule(graph, node) if rule is not None else node.type.nbytes
    return total
