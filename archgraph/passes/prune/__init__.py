"""Pruning: structured (channels and attention heads, consistently across the DAG) and
unstructured (weight sparsity with masks), asked for by name, never implicit.

    pruned, report = prune_channels(graph, 0.5, importance="l1", scope="layer")
"""

from archgraph.passes.prune.analysis import ChannelGraph, analyze
from archgraph.passes.prune.structured import prune_channels

__all__ = ["ChannelGraph", "analyze", "prune_channels"]
