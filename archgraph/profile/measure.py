"""Measured latency, per node and end to end.

Every measurement runs `warmup` untimed calls first, then `repeats` timed ones, and reports the
median with p10 and p90 as its spread. On the CPU the clock is time.perf_counter; on CUDA it is a
pair of CUDA events around the timed region, read after torch.cuda.synchronize(), so queued
kernels are never mistaken for finished ones.

- Per node: an fx Interpreter runs the compiled module node by node and times each node (the
  times of the fx nodes an IR node lowered to are added up under its IR id, `meta["ir_id"]`).
- End to end: the module called as a user calls it. Several contenders are timed interleaved
  (one call of each per round), so a slow phase of the machine hits them all alike.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx

from archgraph.ir.graph import Graph

Progress = Callable[[], None] | None


def example_inputs(
    graph: Graph, device: str = "cpu", seed: int = 0, batch: int | None = None
) -> list[torch.Tensor]:
    """Random inputs matching the graph's input types (integer inputs get small valid indices)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for node_id in graph.inputs:
        t = graph[node_id].type
        shape = (batch or t.shape[0], *t.shape[1:])
        if t.torch_dtype.is_floating_point:
            x = torch.randn(shape, generator=gen, dtype=torch.float32).to(t.torch_dtype)
        else:
            x = torch.zeros(shape, dtype=t.torch_dtype)
        out.append(x.to(device))
    return out


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p10_ms: float
    p90_ms: float
    samples: int

    @staticmethod
    def of(seconds: Sequence[float]) -> Timing:
        ms = sorted(s * 1e3 for s in seconds)
        q = statistics.quantiles(ms, n=10, method="inclusive") if len(ms) > 1 else [ms[0]] * 9
        return Timing(statistics.median(ms), q[0], q[-1], len(ms))


class _Clock:
    """Wall-clock marks on the CPU; CUDA events on a GPU (read once `finish` has synchronized)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def start(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()  # nothing queued before the timed region counts in it

    def mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def finish(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def seconds(self, a: Any, b: Any) -> float:
        return a.elapsed_time(b) / 1e3 if self.cuda else b - a


@dataclass(frozen=True)
class Span:
    """One node's time in one run, in seconds from the start of the run."""

    id: str
    start_s: float
    duration_s: float


class _NodeTimer(fx.Interpreter):
    """Runs the module node by node, marking the clock around every node."""

    def __init__(self, module: fx.GraphModule, clock: _Clock) -> None:
        super().__init__(module, garbage_collect_values=True)
        self.clock = clock
        self.marks: list[tuple[str, Any, Any]] = []

    def run_node(self, n: fx.Node) -> Any:
        if n.op in ("placeholder", "output"):
            return super().run_node(n)
        start = self.clock.mark()
        result = super().run_node(n)
        self.marks.append((n.meta.get("ir_id", n.name), start, self.clock.mark()))
        return result

    def spans(self) -> list[Span]:
        if not self.marks:
            return []
        origin = self.marks[0][1]
        return [
            Span(node_id, self.clock.seconds(origin, a), self.clock.seconds(a, b))
            for node_id, a, b in self.marks
        ]


@dataclass
class NodeTimes:
    """Per-IR-node timings, and the spans of the run whose total is the median (for traces)."""

    timings: dict[str, Timing] = field(default_factory=dict)
    median_run: list[Span] = field(default_factory=list)


def time_nodes(
    module: fx.GraphModule,
    inputs: Sequence[torch.Tensor],
    *,
    warmup: int = 2,
    repeats: int = 10,
    device: str = "cpu",
    progress: Progress = None,
) -> NodeTimes:
    """Per-IR-node latency over `repeats` runs after `warmup` runs."""
    clock = _Clock(device)
    samples: dict[str, list[float]] = defaultdict(list)
    runs: list[list[Span]] = []
    with torch.inference_mode():
        for step in range(warmup + repeats):
            timer = _NodeTimer(module, clock)
            clock.start()
            timer.run(*inputs)
            clock.finish()
            if step >= warmup:
                spans = timer.spans()
                per_node: dict[str, float] = defaultdict(float)
                for span in spans:
                    per_node[span.id] += span.duration_s
                for node_id, seconds in per_node.items():
                    samples[node_id].append(seconds)
                runs.append(spans)
            if progress:
                progress()
    runs.sort(key=lambda spans: sum(s.duration_s for s in spans))
    return NodeTimes({k: Timing.of(v) for k, v in samples.items()}, runs[len(runs) // 2])


def time_interleaved(
    contenders: Mapping[str, Callable[..., Any]],
    inputs: Sequence[torch.Tensor],
    *,
    warmup: int = 3,
    repeats: int = 20,
    device: str = "cpu",
    progress: Progress = None,
) -> dict[str, Timing]:
    """End-to-end latency of each `fn(*inputs)`, one call of each per round."""
    clock = _Clock(device)
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    with torch.inference_mode():
        for step in range(warmup + repeats):
            for name, fn in contenders.items():
                clock.start()
                a = clock.mark()
                fn(*inputs)
                b = clock.mark()
                clock.finish()
                if step >= warmup:
                    seconds[name].append(clock.seconds(a, b))
            if progress:
                progress()
    return {name: Timing.of(s) for name, s in seconds.items()}


def time_module(
    fn: Callable[..., Any],
    inputs: Sequence[torch.Tensor],
    *,
    warmup: int = 3,
    repeats: int = 20,
    device: str = "cpu",
    progress: Progress = None,
) -> Timing:
    """End-to-end latency of calling `fn(*inputs)`."""
    return time_interleaved(
        {"fn": fn}, inputs, warmup=warmup, repeats=repeats, device=device, progress=progress
    )["fn"]
