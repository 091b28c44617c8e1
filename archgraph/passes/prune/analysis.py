"""Channel dependency analysis for structured pruning (DepGraph's idea, on the archgraph IR).

Every channel a node's output carries gets an id. Ops that produce channels (conv, linear) mint
fresh ids; ops that pass channels (batchnorm, activations, pooling, depthwise convs) hand their
input's ids on; a concat lays its inputs' ids side by side (the offset map); an add or mul
unites its inputs' ids position by position (a residual couples its branches); a transpose or
flatten moves the channel dim. Ids united this way form a *component*: one channel of the
network that must be removed everywhere at once. Whatever an op does not declare (no channel
rule, a layernorm mixing its channels, a grouped conv, a graph output) *blocks* the ids it
touches: they stay.

The rules come from the ops themselves (OpDef.channels, archgraph.ops.registry.ChannelRule).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from archgraph.ir.graph import Graph, Node
from archgraph.ir.weights import param_key, param_specs
from archgraph.ops.registry import ChannelRule, get_op


@dataclass(frozen=True)
class Channels:
    """The channel ids of one node's output along its channel dim `axis` (non-negative)."""

    axis: int
    ids: np.ndarray


@dataclass(frozen=True)
class Slice:
    """A parameter dim indexed by channels: tensor `key`, dim `dim`, the channel id of each
    position along it (`ids`), and whether the node writes (out) or reads (in) those channels."""

    node: str
    key: str
    dim: int
    ids: np.ndarray
    side: str  # "out" | "in"


@dataclass(frozen=True)
class HeadSlice:
    """A parameter dim made of `parts` blocks of num_heads * head_dim (attention heads)."""

    node: str
    key: str
    dim: int
    parts: int
    num_heads: int
    head_dim: int


@dataclass
class ChannelGraph:
    """The result of `analyze`: per-node channels, rules, components and blocked ids."""

    graph: Graph
    rules: dict[str, ChannelRule | None]
    channels: dict[str, Channels | None]
    producer: list[str | None] = field(default_factory=list)  # id -> node that minted it
    parent: list[int] = field(default_factory=list)
    blocked: set[int] = field(default_factory=set)
    _root_of: np.ndarray | None = None
    _specs: dict | None = None

    @property
    def specs(self) -> dict:
        if self._specs is None:
            self._specs = param_specs(self.graph)
        return self._specs

    # ---- union-find ---------------------------------------------------------------------
    def fresh(self, n: int, producer: str | None, blocked: bool = False) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        self.producer.extend([producer] * n)
        if blocked:
            self.blocked.update(range(start, start + n))
        return np.arange(start, start + n, dtype=np.int64)

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: np.ndarray, b: np.ndarray) -> None:
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            ra, rb = self.find(x), self.find(y)
            if ra != rb:
                self.parent[rb] = ra

    def block(self, ids: np.ndarray) -> None:
        self.blocked.update(ids.tolist())

    # ---- results ------------------------------------------------------------------------
    def roots(self, ids: np.ndarray) -> np.ndarray:
        """The component (root id) of each id; call after the analysis is complete."""
        if self._root_of is None or len(self._root_of) != len(self.parent):
            self._root_of = np.fromiter(
                (self.find(i) for i in range(len(self.parent))), np.int64, len(self.parent)
            )
        return self._root_of[ids]

    def blocked_roots(self) -> set[int]:
        return {self.find(i) for i in self.blocked}

    def components(self) -> dict[int, list[int]]:
        """Prunable components: root id -> member ids (components with a blocked id left out)."""
        dead = self.blocked_roots()
        out: dict[int, list[int]] = {}
        for i, r in enumerate(self.roots(np.arange(len(self.parent))).tolist()):
            if r not in dead:
                out.setdefault(r, []).append(i)
        return out

    def cluster_key(self, members: list[int]) -> tuple[str, ...]:
        """The nodes that produce a component's channels: components with the same producers
        are one layer's channels (a residual stage's are all its blocks' last convs)."""
        return tuple(sorted({p for i in members if (p := self.producer[i]) is not None}))

    def slices(self) -> Iterator[Slice]:
        """Every parameter dim that some channel ids index, over the whole graph."""
        specs = self.specs
        for node in self.graph.nodes():
            rule, out = self.rules[node.id], self.channels[node.id]
            if rule is None:
                continue
            if out is not None and rule.kind in ("produce", "pass", "heads"):
                for name, dim in rule.out_params.items():
                    if param_key(node.id, name) in specs:
                        yield Slice(node.id, param_key(node.id, name), dim, out.ids, "out")
            if rule.kind in ("produce", "heads") and rule.in_params:
                src = self.channels[node.inputs[0]]
                if src is not None and src.axis == _axis(
                    rule.in_axis or rule.axis, node, self.graph
                ):
                    for name, dim in rule.in_params.items():
                        if param_key(node.id, name) in specs:
                            yield Slice(node.id, param_key(node.id, name), dim, src.ids, "in")

    def head_slices(self, node_id: str) -> list[HeadSlice]:
        node = self.graph[node_id]
        rule = self.rules[node_id]
        if rule is None or rule.kind != "heads":
            return []
        specs = self.specs
        heads = node.args["num_heads"]
        keys = {name: param_key(node_id, name) for name in rule.head_params}
        # each tensor's own width per head (a relative position bias table has one per head)
        return [
            HeadSlice(node_id, keys[name], d, p, heads, specs[keys[name]].shape[d] // (p * heads))
            for name, (d, p) in rule.head_params.items()
            if keys[name] in specs
        ]


def _axis(axis: int | None, node: Node, graph: Graph) -> int | None:
    """A rule's axis made non-negative for the node's input rank."""
    if axis is None:
        return None
    rank = graph[node.inputs[0]].type.rank if node.inputs else node.type.rank
    return axis % rank


def analyze(graph: Graph) -> ChannelGraph:
    """Channel ids and components of a graph (see the module docstring)."""
    cg = ChannelGraph(graph, {}, {})
    for node in graph.nodes():
        op = get_op(node.op)
        ins = [graph[i].type for i in node.inputs]
        rule = op.channels(node.args, ins) if op.channels is not None else None
        cg.rules[node.id] = rule
        srcs = [cg.channels[i] for i in node.inputs]
        cg.channels[node.id] = _step(cg, node, rule, srcs)
    for out in graph.outputs:
        ch = cg.channels[out]
        if ch is not None:
            cg.block(ch.ids)  # the network's interface stays as it is
    return cg


def _block_all(cg: ChannelGraph, srcs: list[Channels | None]) -> None:
    for s in srcs:
        if s is not None:
            cg.block(s.ids)


def _step(
    cg: ChannelGraph, node: Node, rule: ChannelRule | None, srcs: list[Channels | None]
) -> Channels | None:
    out_rank = node.type.rank
    if rule is None:
        _block_all(cg, srcs)
        return None
    kind = rule.kind
    if kind == "produce":
        in_axis = _axis(rule.in_axis, node, cg.graph)
        if srcs[0] is not None and srcs[0].axis != in_axis:
            cg.block(srcs[0].ids)
        _block_all(cg, srcs[1:])
        axis = rule.axis % out_rank  # type: ignore[operator]
        return Channels(axis, cg.fresh(node.type.shape[axis], node.id))
    if kind == "heads" and rule.axis is None:  # heads only: the model channels are mixed
        _block_all(cg, srcs)
        return None
    if kind in ("pass", "heads"):
        src = srcs[0]
        _block_all(cg, srcs[1:])
        if src is None:
            return None
        if rule.axis is not None and src.axis != _axis(rule.axis, node, cg.graph):
            cg.block(src.ids)
            return None
        return src
    if kind == "reduce":
        axis = _axis(rule.axis, node, cg.graph)
        if srcs[0] is not None and srcs[0].axis != axis:
            if srcs[0].ids.shape[0] == node.type.shape[srcs[0].axis]:
                return srcs[0]  # mixing along another dim leaves the channels as they are
            cg.block(srcs[0].ids)
            return None
        _block_all(cg, srcs)
        a = axis if axis is not None and axis < out_rank else 1
        return Channels(a, cg.fresh(node.type.shape[a], None, blocked=True))
    if kind == "move":
        src = srcs[0]
        if src is None:
            return None
        assert rule.move is not None
        new = rule.move(node.args, cg.graph[node.inputs[0]].type, src.axis)
        if new is None:
            cg.block(src.ids)
            return None
        return Channels(new, src.ids)
    if kind == "concat":
        dim = node.args["dim"] % out_rank
        if all(s is not None and s.axis == dim for s in srcs):
            return Channels(dim, np.concatenate([s.ids for s in srcs]))  # type: ignore[union-attr]
        if all(s is None or s.axis != dim for s in srcs):
            return _couple(cg, node, srcs)
        _block_all(cg, srcs)
        return None
    if kind == "couple":
        return _couple(cg, node, srcs)
    raise ValueError(f"op '{node.op}': unknown channel rule kind '{kind}'")


def _couple(cg: ChannelGraph, node: Node, srcs: list[Channels | None]) -> Channels | None:
    """Inputs that meet elementwise (with broadcasting) share their channels."""
    out = node.type
    tracked = [
        (s, s.axis + out.rank - cg.graph[i].type.rank)
        for s, i in zip(srcs, node.inputs, strict=True)
        if s is not None
    ]
    full = [(s, a) for s, a in tracked if s.ids.shape[0] == out.shape[a] and out.shape[a] > 1]
    if not full or len({a for _, a in full}) != 1:
        _block_all(cg, srcs)
        return None
    axis = full[0][1]
    result = full[0][0].ids
    for src, i in zip(srcs, node.inputs, strict=True):
        t = cg.graph[i].type
        d = axis - (out.rank - t.rank)
        if d < 0 or t.shape[d] == 1:
            if src is not None and src.ids.shape[0] > 1:
                cg.block(src.ids)  # broadcast along the channels: they meet every channel
            continue
        if src is None or src.axis != d:
            cg.block(result)
            if src is not None:
                cg.block(src.ids)
            continue
        cg.union(result, src.ids)
    return Channels(axis, result)
