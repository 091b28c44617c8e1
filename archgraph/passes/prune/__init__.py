"""Pruning: structured (channels and attention heads, consistently across the DAG) and
unstructured (weight sparsity with masks kept as buffers), asked for by name, never implicit.

    pruned, report = prune_channels(graph, 0.5, importance="l1", scope="layer")
    sparse, masks, report = prune_weights(graph, 0.9, method="random-erk")
    handle = attach_masks(module, masks, optimizer)
    pruning = GradualPruning(module, optimizer, final=0.9, start=0, frequency=10, steps=20)
    granet = GraNet(module, optimizer, final=0.9, start=0, frequency=10, steps=20, regrow=0.5)
"""

from archgraph.passes.prune.analysis import ChannelGraph, analyze
from archgraph.passes.prune.granet import GraNet
from archgraph.passes.prune.schedule import GradualPruning, StaticSparsity, cubic_sparsity
from archgraph.passes.prune.sparsity import attach_masks, erk_densities, prune_weights
from archgraph.passes.prune.structured import prune_channels

__all__ = [
    "ChannelGraph",
    "GraNet",
    "GradualPruning",
    "StaticSparsity",
    "analyze",
    "attach_masks",
    "cubic_sparsity",
    "erk_densities",
    "prune_channels",
    "prune_weights",
]
