"""Architecture rewrites, asked for by name (never run implicitly), each reporting params, MACs
and memory access cost before and after.

    graph, report = rewrite(graph, "dense-to-osa")
"""

from __future__ import annotations

from collections.abc import Callable

from archgraph.errors import ArchgraphError, did_you_mean
from archgraph.ir.graph import Graph
from archgraph.passes.rewrites.dense_to_osa import dense_to_osa
from archgraph.passes.rewrites.report import ArchReport, Size, measure

# name -> (graph, seed) -> (graph, note)
REWRITES: dict[str, Callable[[Graph, int], tuple[Graph, str]]] = {
    "dense-to-osa": lambda g, seed: (
        lambda r: (r[0], f"rewrote {r[1]} dense block(s) into one-shot aggregation blocks")
    )(dense_to_osa(g, seed=seed)),
}


def rewrite(graph: Graph, name: str, *, seed: int = 0) -> tuple[Graph, ArchReport]:
    """Apply the named rewrite; returns the new graph and its before/after report."""
    if name not in REWRITES:
        raise ArchgraphError(
            f"unknown rewrite '{name}'",
            expected=" | ".join(REWRITES),
            found=repr(name),
            hint=did_you_mean(name, REWRITES),
        )
    before = measure(graph)
    out, note = REWRITES[name](graph, seed)
    return out, ArchReport(f"rewrite {name}", before, measure(out), (note,))


__all__ = ["REWRITES", "ArchReport", "Size", "measure", "rewrite"]
