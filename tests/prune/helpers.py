"""Helpers for the pruning tests: random weights that make every layer matter, and zeroing
chosen channels/heads so that removing them must leave the network's output unchanged."""

from __future__ import annotations

import numpy as np
import torch

import archgraph
from archgraph.ir.graph import Graph
from archgraph.ir.weights import bind_weights
from archgraph.passes.prune.analysis import analyze
from archgraph.passes.prune.structured import Layer, layers


def random_graph(name: str, batch: int = 2, seed: int = 0, **params: object) -> Graph:
    """A zoo graph with random weights: batchnorm statistics and shifts random too, so that
    batchnorm of a zero channel is not zero unless its scale and shift are."""
    return randomize(archgraph.load(name, batch=batch, **params), seed)


def randomize(g: Graph, seed: int = 0) -> Graph:
    """Bind random weights to `g` (see random_graph)."""
    bind_weights(g, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    assert g.weights is not None
    for key, t in g.weights.items():
        if not t.is_floating_point():
            continue
        fresh = torch.randn(t.shape, generator=gen) * 0.1
        if key.endswith("running_var"):
            fresh = fresh.abs() + 0.5
        elif t.dim() == 1 and key.endswith("weight"):
            fresh = fresh + 1.0
        elif t.dim() >= 2:
            fresh = t + fresh * t.abs().mean()
        g.weights[key] = fresh
    return g


def zero_units(graph: Graph, ratio: float, seed: int = 0) -> dict[str, set[int]]:
    """Zero a random `ratio` of every prunable layer's units (rounded down, as pruning does):
    every weight slice of a chosen channel (producers' rows, consumers' columns, batchnorm
    scale and shift), every q/k/v row and proj column of a chosen head. Returns what was
    zeroed: {"channels": roots, <attention node id>: heads}."""
    cg = analyze(graph)
    found: list[Layer] = layers(cg)
    rng = np.random.default_rng(seed)
    chosen: dict[str, set[int]] = {"channels": set()}
    assert graph.weights is not None
    for layer in found:
        n = min(int(ratio * len(layer.units)), len(layer.units) - 1)
        pick = {int(u) for u in rng.choice(layer.units, size=n, replace=False)}
        if layer.kind == "channels":
            chosen["channels"] |= pick
        else:
            chosen[layer.key[0]] = pick
    for s in cg.slices():
        pos = np.flatnonzero(np.isin(cg.roots(s.ids), list(chosen["channels"])))
        graph.weights[s.key].index_fill_(s.dim, torch.as_tensor(pos, dtype=torch.long), 0.0)
    for node_id, heads in chosen.items():
        for h in cg.head_slices(node_id) if node_id != "channels" else []:
            block = h.num_heads * h.head_dim
            rows = [
                p * block + u * h.head_dim + j
                for u in heads
                for p in range(h.parts)
                for j in range(h.head_dim)
            ]
            graph.weights[h.key].index_fill_(h.dim, torch.as_tensor(rows, dtype=torch.long), 0.0)
    return chosen


def run(graph: Graph, x: torch.Tensor) -> torch.Tensor:
    module = archgraph.compile(graph).eval()
    with torch.no_grad():
        return module(x)


def example_input(graph: Graph, seed: int = 0) -> torch.Tensor:
    t = graph[graph.inputs[0]].type
    return torch.randn(t.shape, generator=torch.Generator().manual_seed(seed))


# a small VoVNet (OSA blocks) for training-loop tests: no depthwise convs, whose backward is
# slow on CPUs
TINY = {
    "image_size": 32,
    "stem_channels": [16, 16, 16],
    "mid_channels": [16, 16, 24, 24],
    "out_channels": [32, 48, 64, 96],
    "blocks_per_stage": [1, 1, 1, 1],
    "layers_per_block": 3,
    "num_classes": 10,
}
TINY_NAME = "vovnet39a"
