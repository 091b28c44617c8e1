"""Structured pruning: remove whole channels and attention heads, shrinking every node that
reads or writes them, so the result is a physically smaller graph (and module) with its
weights sliced to match.

    pruned, report = prune_channels(graph, 0.5, importance="l1", scope="layer")

Units: a *component* (one channel of the network, coupled across residual adds, concat offsets,
depthwise convs and normalization; archgraph.passes.prune.analysis) or one attention *head*.
Units are grouped into *layers* (components with the same producing nodes; the heads of one
attention node). `scope="layer"` removes `ratio` of each layer's units (rounded down, one unit
always kept); `scope="global"` ranks all units by importance normalized by their layer's mean
and removes the lowest `ratio` of them all, keeping one unit per layer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from archgraph.errors import ArchgraphError, GraphError
from archgraph.ir.graph import Graph
from archgraph.ir.sharing import sharers
from archgraph.ir.weights import bind_weights
from archgraph.ops.registry import get_op
from archgraph.passes.prune.analysis import ChannelGraph, HeadSlice, analyze
from archgraph.passes.rewrite import Rewriter
from archgraph.passes.rewrites.report import ArchReport, measure

IMPORTANCES = ("l1", "l2", "random")
SCOPES = ("layer", "global")


@dataclass(frozen=True)
class Layer:
    """Prunable units sharing one ratio: `kind` "channels" (units are component roots) or
    "heads" (units are head indices of node `key[0]`)."""

    kind: str
    key: tuple[str, ...]
    units: tuple[int, ...]


def layers(cg: ChannelGraph) -> list[Layer]:
    """The prunable layers of an analyzed graph, in a stable order."""
    by_key: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for root, members in cg.components().items():
        by_key[cg.cluster_key(members)].append(root)
    out = [Layer("channels", k, tuple(sorted(v))) for k, v in by_key.items() if len(v) > 1]
    for node in cg.graph.nodes():
        hs = cg.head_slices(node.id)
        if hs and hs[0].num_heads > 1:
            out.append(Layer("heads", (node.id,), tuple(range(hs[0].num_heads))))
    return out


def _norms(t: torch.Tensor, dims: set[int], p: str) -> dict[int, np.ndarray]:
    """Per-index L1 norms (or squared L2 norms) of `t` along each of `dims`, reading the tensor
    once: |t| (or t^2) is first summed over the dims nobody asked for. NumPy, single-threaded:
    these small reductions lose more to thread start-up than they gain from it."""
    x = t.detach().float().cpu().numpy()
    a = np.abs(x) if p == "l1" else x * x
    rest = tuple(d for d in range(a.ndim) if d not in dims)
    kept = sorted(dims)
    m = a.sum(axis=rest, dtype=np.float64) if rest else a.astype(np.float64)
    out = {}
    for i, d in enumerate(kept):
        others = tuple(j for j in range(len(kept)) if j != i)
        out[d] = m.sum(axis=others) if others else m
    return out


def _head_rows(h: HeadSlice, head: int) -> list[int]:
    block = h.num_heads * h.head_dim
    start = head * h.head_dim
    return [p * block + start + j for p in range(h.parts) for j in range(h.head_dim)]


def scores(cg: ChannelGraph, found: list[Layer], importance: str, seed: int = 0) -> dict:
    """Importance of every unit: {(layer index, unit): score}. l1/l2 sum |w| / w^2 over every
    weight slice of the unit (the producers' output rows, the consumers' input columns,
    batchnorm scales and shifts); random draws from a seeded generator."""
    weights = cg.graph.weights or {}
    out: dict[tuple[int, int], float] = {}
    if importance == "random":
        rng = np.random.default_rng(seed)
        for li, layer in enumerate(found):
            for u, s in zip(layer.units, rng.random(len(layer.units)), strict=True):
                out[(li, u)] = float(s)
        return out
    per_root = np.zeros(len(cg.parent))
    slices = list(cg.slices())
    dims: dict[str, set[int]] = defaultdict(set)
    for s in slices:
        dims[s.key].add(s.dim)
    norms = {key: _norms(weights[key], ds, importance) for key, ds in dims.items()}
    for s in slices:
        np.add.at(per_root, cg.roots(s.ids), norms[s.key][s.dim])
    for li, layer in enumerate(found):
        if layer.kind == "channels":
            for u in layer.units:
                out[(li, u)] = float(per_root[u])
            continue
        for u in layer.units:
            total = 0.0
            for h in cg.head_slices(layer.key[0]):
                v = _norms(weights[h.key], {h.dim}, importance)[h.dim]
                total += float(v[_head_rows(h, u)].sum())
            out[(li, u)] = total
    return out


def select(found: list[Layer], score: dict, ratio: float, scope: str) -> dict[int, set[int]]:
    """Units to remove per layer index."""
    drop: dict[int, set[int]] = {li: set() for li in range(len(found))}
    if scope == "layer":
        for li, layer in enumerate(found):
            n = min(int(ratio * len(layer.units)), len(layer.units) - 1)
            ranked = sorted(layer.units, key=lambda u, li=li: (score[(li, u)], u))
            drop[li] = set(ranked[:n])
        return drop
    normalized = []
    for li, layer in enumerate(found):
        mean = np.mean([score[(li, u)] for u in layer.units]) or 1.0
        normalized.extend((score[(li, u)] / mean, li, u) for u in layer.units)
    budget = int(ratio * len(normalized))
    left = {li: len(layer.units) for li, layer in enumerate(found)}
    for _, li, u in sorted(normalized):
        if budget == 0:
            break
        if left[li] > 1:
            drop[li].add(u)
            left[li] -= 1
            budget -= 1
    return drop


def _take(t: torch.Tensor, dim: int, keep: np.ndarray) -> torch.Tensor:
    if t.dtype == torch.bfloat16:  # NumPy has no bfloat16
        return t.index_select(dim, torch.as_tensor(keep, dtype=torch.long))
    return torch.from_numpy(np.take(t.detach().cpu().numpy(), keep, axis=dim))


def apply(cg: ChannelGraph, dropped_roots: set[int], dropped_heads: dict[str, set[int]]) -> Graph:
    """The graph with the given components and heads removed; weights sliced to match."""
    graph = cg.graph
    weights = dict(graph.weights or {})
    dead = np.zeros(len(cg.parent), dtype=bool)
    dead[list(dropped_roots)] = True
    for s in cg.slices():
        keep = np.flatnonzero(~dead[cg.roots(s.ids)])
        if len(keep) < len(s.ids):
            weights[s.key] = _take(weights[s.key], s.dim, keep)
    for node_id, heads in dropped_heads.items():
        if not heads:
            continue
        for h in cg.head_slices(node_id):
            rows = sorted(r for u in range(h.num_heads) if u not in heads for r in _head_rows(h, u))
            weights[h.key] = _take(weights[h.key], h.dim, np.asarray(rows))
    rw = Rewriter(graph)
    rw.weights = weights
    inputs = set(graph.inputs)
    for node in graph.nodes():
        args = dict(node.args)
        rule, ch = cg.rules[node.id], cg.channels[node.id]
        if rule is not None and rule.resize is not None:
            if rule.kind == "heads":
                n_heads = node.args["num_heads"] - len(dropped_heads.get(node.id, ()))
                if n_heads != node.args["num_heads"]:
                    args = rule.resize(args, n_heads)
            elif ch is not None:
                kept = int((~dead[cg.roots(ch.ids)]).sum())
                if kept != len(ch.ids):
                    args = rule.resize(args, kept)
        if node.id not in inputs:
            rw.put(rw.make(node.id, node.op, node.inputs, **args))
    try:
        return rw.build()
    except GraphError as e:
        e.message = f"channel pruning left the graph inconsistent: {e.message}"
        raise


def _refuse_shared(graph: Graph) -> None:
    """Channels of parameters several nodes use would have to be chosen for all of them at
    once, which the channel analysis (one node, one set of parameters) cannot do: refuse."""
    for target, users in sharers(graph).items():
        node = graph[users[0]]
        raise ArchgraphError(
            f"cannot prune channels: this node uses the parameters of '{target}'",
            node=node.id,
            loc=node.loc,
            expected="a graph whose nodes own their parameters",
            found=f"{len(users)} node(s) sharing '{target}' ({', '.join(users[:3])})",
            hint="remove `share:` to prune channels, or prune single weights: --prune weights=RATIO",
        )


def _refuse_opaque(cg: ChannelGraph) -> None:
    """Nothing can be pruned: when a layer with parameters but no channel rule is why, say so
    at that node rather than reporting an empty pruning."""
    for node in cg.graph.nodes():
        if cg.rules[node.id] is not None or node.share is not None:
            continue
        ins = [cg.graph[i].type for i in node.inputs]
        keys = list(get_op(node.op).params(node.args, ins))
        if keys:
            raise ArchgraphError(
                f"cannot prune channels: op '{node.op}' has no channel rule, and no other "
                "channel of the network can be removed",
                node=node.id,
                loc=node.loc,
                expected="layers whose channels pruning can follow (conv2d, linear, ...)",
                found=f"'{node.id}' ({node.op}) with parameters {', '.join(keys)}",
                hint="prune single weights instead: --prune weights=RATIO",
            )


def prune_channels(
    graph: Graph,
    ratio: float,
    *,
    importance: str = "l1",
    scope: str = "layer",
    seed: int = 0,
) -> tuple[Graph, ArchReport]:
    """Remove `ratio` of the prunable channels and attention heads (see the module docstring).

    The graph's weights are used (bound from `seed` first if it has none); the result has its
    weights sliced, and the report gives params, MACs and memory access cost before and after.
    """
    from archgraph.passes.prune.options import check_choice, check_ratio

    check_ratio("channels", ratio)
    check_choice("importance", importance, IMPORTANCES)
    check_choice("scope", scope, SCOPES)
    _refuse_shared(graph)
    if graph.weights is None:
        graph = bind_weights(graph.copy(), seed=seed)
    before = measure(graph)
    cg = analyze(graph)
    found = layers(cg)
    if not found:
        _refuse_opaque(cg)
    drop = select(found, scores(cg, found, importance, seed), ratio, scope)
    roots = {u for li, layer in enumerate(found) if layer.kind == "channels" for u in drop[li]}
    heads = {layer.key[0]: drop[li] for li, layer in enumerate(found) if layer.kind == "heads"}
    pruned = apply(cg, roots, heads)
    n_channels = sum(len(la.units) for la in found if la.kind == "channels")
    n_heads = sum(len(la.units) for la in found if la.kind == "heads")
    notes = (
        f"removed {len(roots)} of {n_channels} prunable channels in "
        f"{sum(1 for la in found if la.kind == 'channels')} coupled layers"
        + (
            f", {sum(len(v) for v in heads.values())} of {n_heads} attention heads"
            if n_heads
            else ""
        )
    )
    title = f"prune channels={ratio:g} (importance={importance}, scope={scope})"
    return pruned, ArchReport(title, before, measure(pruned), (notes,))
