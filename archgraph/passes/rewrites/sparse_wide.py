"""sparse-wide=S: Sparse-IFT's Sparse Wide transformation (iso-FLOP).

Every prunable channel layer (archgraph.passes.prune.analysis: channels coupled across residual
adds, concat offsets, depthwise convs and normalization; the network's input and output stay)
is widened by k = 1/sqrt(1 - S), rounded to whole channels. A conv or linear layer widened on
both its fan-in and fan-out then has about k^2 times its dense weights and MACs: trained at
sparsity S it costs what the dense layer costs. A layer widened on one side only (the stem conv,
which reads the image; the classifier, which writes the logits; a depthwise conv) has k times
its weights and is trained at sparsity 1 - 1/k instead. Each layer's density is exactly
dense weights / widened weights, so with its mask every conv and linear layer has the dense
layer's MACs (MACs are weights times output positions, and widening keeps the positions).

The result is a new architecture initialized from the seed (retrain it), plus those densities:
the trainer attaches random masks at them (`archgraph train SPEC --rewrite sparse-wide=S`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction

import torch

from archgraph.errors import ArchgraphError, GraphError
from archgraph.ir.graph import Graph
from archgraph.ir.weights import init_weights, param_specs
from archgraph.passes.prune.analysis import analyze
from archgraph.passes.prune.options import check_ratio
from archgraph.passes.prune.sparsity import random_masks
from archgraph.passes.prune.structured import layers
from archgraph.passes.rewrite import Rewriter


def widen_factor(sparsity: float) -> float:
    """k = 1 / sqrt(1 - S)."""
    return 1 / math.sqrt(1 - sparsity)


def _prunable_shapes(graph: Graph) -> dict[str, tuple[int, ...]]:
    return {
        k: tuple(s.shape)
        for k, s in param_specs(graph).items()
        if s.trainable and k.endswith(".weight") and len(s.shape) >= 2
    }


def sparse_wide(graph: Graph, sparsity: float, *, seed: int = 0) -> tuple[Graph, dict[str, float]]:
    """The widened graph and the density of each widened conv/linear weight (module docstring)."""
    check_ratio("sparse-wide", sparsity)
    if sparsity == 0:
        raise ArchgraphError(
            "sparse-wide needs a sparsity above 0", expected="S in (0, 1)", found="0"
        )
    shape_only = graph.copy()
    shape_only.weights = None
    cg = analyze(shape_only)
    found = [la for la in layers(cg) if la.kind == "channels"]
    k = widen_factor(sparsity)
    layer_of: dict[int, int] = {}
    for li, la in enumerate(found):
        for root in la.units:
            layer_of[root] = li
    # a node's new width: each widened layer it carries whole contributes its new width
    widths: dict[str, int] = {}
    partial: set[int] = set()
    for node in shape_only.nodes():
        ch = cg.channels[node.id]
        rule = cg.rules[node.id]
        if ch is None or rule is None or rule.resize is None or rule.kind == "heads":
            continue
        counts: dict[int, int] = defaultdict(int)
        for root in cg.roots(ch.ids).tolist():
            counts[layer_of.get(root, -1)] += 1
        width = Fraction(counts.pop(-1, 0))
        for li, n in counts.items():
            size = len(found[li].units)
            if n % size:
                partial.add(li)
            width += Fraction(n * round(size * k), size)
        if width.denominator == 1 and width != len(ch.ids):
            widths[node.id] = int(width)
    if partial:
        raise GraphError(
            "sparse-wide: a node carries part of a channel layer; widening it is not defined",
            found=", ".join(",".join(found[li].key) for li in sorted(partial)),
        )
    if not widths:
        raise ArchgraphError(
            f"sparse-wide: '{graph.name}' has no channel layer to widen",
            expected="conv or linear layers whose channels are not the network's input or output",
            found="none",
        )
    rw = Rewriter(shape_only)
    for node in shape_only.nodes():
        args = dict(node.args)
        if node.id in widths:
            args = cg.rules[node.id].resize(args, widths[node.id])  # type: ignore[union-attr]
        if node.op != "input":
            rw.put(rw.make(node.id, node.op, node.inputs, **args))
    try:
        out = rw.build()
    except GraphError as e:
        e.message = f"sparse-wide left the graph inconsistent: {e.message}"
        raise
    if graph.weights is not None:
        out.weights = init_weights(out, seed)
    dense, wide = _prunable_shapes(graph), _prunable_shapes(out)
    densities = {}
    for key, shape in wide.items():
        n_dense, n_wide = math.prod(dense[key]), math.prod(shape)
        if n_wide > n_dense:
            densities[key] = n_dense / n_wide
    return out, densities


def sparse_wide_masks(
    graph: Graph, densities: dict[str, float], seed: int = 0
) -> dict[str, torch.Tensor]:
    """Random masks at `densities` for the widened graph's weights (what the trainer attaches)."""
    specs = param_specs(graph)
    shapes = {k: torch.empty(specs[k].shape) for k in densities}
    return random_masks(shapes, densities, seed)
