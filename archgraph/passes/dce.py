"""dce: dead-node elimination. Nodes no graph output depends on go, with their weights; graph
inputs always stay (they are the module's signature)."""

from __future__ import annotations

import networkx as nx

from archgraph.ir.graph import Graph
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def dce(graph: Graph) -> tuple[Graph, Change]:
    live = set(graph.outputs) | set(graph.inputs)
    for out in graph.outputs:
        live |= nx.ancestors(graph.nx, out)
    rw = Rewriter(graph)
    dead = [n.id for n in graph.nodes() if n.id not in live]
    rw.keep_only(live)
    notes = (f"removed {len(dead)}: {', '.join(dead[:5])}{' ...' if len(dead) > 5 else ''}",)
    return rw.build(), Change(notes=notes if dead else ())


DCE = Pass("dce", "remove nodes no output depends on", dce)
