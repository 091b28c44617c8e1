"""Passes as values, and the PassManager that runs a list of them.

A pass is a named function Graph -> (Graph, Change); it never edits its input. The manager
verifies the graph after every pass (archgraph.ir.validate, and that the weights match the
graph's parameters exactly) and returns one PassReport per pass: nodes before and after, groups
fused, activation bytes saved per forward call (IR estimate, see archgraph.passes.stats), wall
time, and notes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from archgraph.errors import GraphError
from archgraph.ir.graph import Graph
from archgraph.ir.validate import validate
from archgraph.ir.weights import param_specs
from archgraph.passes.stats import written_bytes


@dataclass(frozen=True)
class Change:
    """What a pass function reports besides the new graph."""

    groups_fused: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PassReport:
    name: str
    nodes_before: int
    nodes_after: int
    groups_fused: int
    bytes_saved: int
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    def line(self) -> str:
        return (
            f"{self.name:<20} nodes {self.nodes_before:>4} -> {self.nodes_after:<4} "
            f"fused {self.groups_fused:>3}  saved {self.bytes_saved / 1e6:8.2f} MB  "
            f"{self.seconds * 1e3:6.1f} ms"
        )


PassFn = Callable[[Graph], tuple[Graph, Change]]


@dataclass(frozen=True)
class Pass:
    """A named graph transformation. `semantic`: it preserves what the network computes in
    eval mode (every pass an -O level runs)."""

    name: str
    doc: str
    fn: PassFn
    semantic: bool = True

    def __call__(self, graph: Graph, written: int | None = None) -> tuple[Graph, PassReport]:
        """Run, verify, report. `written`: written_bytes(graph) if the caller knows it."""
        start = time.perf_counter()
        out, change = self.fn(graph)
        seconds = time.perf_counter() - start
        verify(out, self.name)
        before = written_bytes(graph) if written is None else written
        report = PassReport(
            self.name,
            len(graph),
            len(out),
            change.groups_fused,
            before - written_bytes(out),
            seconds,
            change.notes,
        )
        return out, report


def verify(graph: Graph, after: str) -> None:
    """The graph is well formed and its weights are exactly its parameters (keys and shapes)."""
    try:
        validate(graph)
    except GraphError as e:
        e.message = f"after pass '{after}': {e.message}"
        raise
    if graph.weights is None:
        return
    specs = param_specs(graph)
    if set(specs) != set(graph.weights):
        missing = sorted(set(specs) - set(graph.weights))[:3]
        extra = sorted(set(graph.weights) - set(specs))[:3]
        raise GraphError(
            f"after pass '{after}': weights disagree with the graph's parameters",
            expected=f"missing none (first missing: {missing})",
            found=f"first unexpected: {extra}",
        )
    for key, spec in specs.items():
        if tuple(graph.weights[key].shape) != spec.shape:
            raise GraphError(
                f"after pass '{after}': tensor '{key}' has the wrong shape",
                expected=str(list(spec.shape)),
                found=str(list(graph.weights[key].shape)),
            )


class PassManager:
    """Runs passes in order; `run` returns the final graph and one report per pass."""

    def __init__(self, passes: Sequence[Pass]) -> None:
        self.passes = list(passes)

    def run(self, graph: Graph) -> tuple[Graph, list[PassReport]]:
        reports: list[PassReport] = []
        written = written_bytes(graph)
        for p in self.passes:
            graph, report = p(graph, written)
            written -= report.bytes_saved
            reports.append(report)
        return graph, reports

    def __repr__(self) -> str:
        return f"PassManager({', '.join(p.name for p in self.passes)})"
