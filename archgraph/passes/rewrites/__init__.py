"""Architecture rewrites, asked for by name (never run implicitly), each reporting params, MACs
and memory access cost before and after.

    graph, report = rewrite(graph, "dense-to-osa")
"""

from archgraph.passes.rewrites.report import ArchReport, Size, measure

__all__ = ["ArchReport", "Size", "measure"]
