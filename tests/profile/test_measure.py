"""Latency measurement: warm-up runs are never timed, medians and spread are computed as stated,
CUDA timings are read only after a device synchronization, and the profiler's figures agree with
an end-to-end timing taken outside it (no assertion on absolute time anywhere)."""

from __future__ import annotations

import statistics
import time
from types import SimpleNamespace
from typing import Any

import pytest
import torch

import archgraph
from archgraph.profile import measure, profile
from archgraph.profile.measure import Timing, time_interleaved, time_module, time_nodes


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_warmup_is_not_timed_and_median_p10_p90_are_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(measure, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    durations = iter(
        [5.0, 5.0] + [k / 1e3 for k in (7, 1, 10, 3, 2, 9, 4, 6, 8, 5)]
    )  # 2 slow warm-ups

    def fn() -> None:
        clock.now += next(durations)

    timing = time_module(fn, [], warmup=2, repeats=10)
    # 1..10 ms: median 5.5; inclusive deciles p10 = 1 + 0.1 * 9, p90 = 1 + 0.9 * 9
    assert timing == Timing(pytest.approx(5.5), pytest.approx(1.9), pytest.approx(9.1), 10)


class FakeCuda:
    """A GPU that runs queued work asynchronously: an event's time is known only after a
    synchronize that came after its record; reading it earlier raises."""

    def __init__(self) -> None:
        self.gpu_time = 0.0  # ms of work queued so far
        self.synced_upto = -1.0
        self.log: list[str] = []
        fake = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                assert enable_timing
                self.at: float | None = None

            def record(self) -> None:
                self.at = fake.gpu_time
                fake.log.append("record")

            def elapsed_time(self, end: Event) -> float:
                assert self.at is not None and end.at is not None
                if end.at > fake.synced_upto:
                    raise RuntimeError("event read before the device was synchronized")
                return end.at - self.at

        self.Event = Event

    def synchronize(self) -> None:
        self.synced_upto = self.gpu_time
        self.log.append("sync")

    def launch(self, ms: float) -> None:
        self.gpu_time += ms
        self.log.append("launch")


def test_cuda_timings_use_events_read_after_synchronize(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeCuda()
    monkeypatch.setattr(torch.cuda, "Event", gpu.Event)
    monkeypatch.setattr(torch.cuda, "synchronize", gpu.synchronize)
    work = iter([100.0, 2.0, 4.0, 3.0, 7.0, 5.0])

    def fn() -> None:
        gpu.launch(next(work))  # returns at once, as a kernel launch does

    timing = time_interleaved({"f": fn}, [], warmup=1, repeats=5, device="cuda")["f"]
    assert (
        timing.median_ms == pytest.approx(4.0) and timing.samples == 5
    )  # GPU time, not launch time
    # every timed call: synchronize (earlier work excluded), record, launch, record, synchronize
    assert gpu.log[:5] == ["sync", "record", "launch", "record", "sync"]

    graph = archgraph.load("resnet18")
    module = archgraph.compile(graph).eval()
    nodes = time_nodes(module, [torch.randn(1, 3, 224, 224)], warmup=0, repeats=2, device="cuda")
    assert set(nodes.timings) == {n.id for n in graph.nodes() if n.op != "input"}


def test_node_timings_cover_every_node_and_the_median_run_is_ordered() -> None:
    graph = archgraph.load("resnet18")
    module = archgraph.compile(graph).eval()
    x = torch.randn(1, 3, 224, 224)
    calls: list[int] = []
    nodes = time_nodes(module, [x], warmup=2, repeats=5, progress=lambda: calls.append(1))
    assert len(calls) == 7
    assert set(nodes.timings) == {n.id for n in graph.nodes() if n.op != "input"}
    assert all(
        t.samples == 5 and t.p10_ms <= t.median_ms <= t.p90_ms for t in nodes.timings.values()
    )
    spans = nodes.median_run
    assert [s.id for s in spans] == [n.id for n in graph.nodes() if n.op != "input"]
    assert all(
        a.start_s + a.duration_s <= b.start_s for a, b in zip(spans, spans[1:], strict=False)
    )


def _external_samples(
    module: torch.nn.Module, x: torch.Tensor, warmup: int, repeats: int
) -> list[float]:
    """A plain perf_counter loop with warm-up: the timing a user would write."""
    samples = []
    with torch.inference_mode():
        for _ in range(warmup):
            module(x)
        for _ in range(repeats):
            start = time.perf_counter()
            module(x)
            samples.append(time.perf_counter() - start)
    return samples


def test_profiler_total_within_15_percent_of_external_timing() -> None:
    """resnet50 at batch 1: the end-to-end median and the sum of per-node medians both stay within
    15% of an external timing of the same module. Five rounds alternate the external loop and the
    profiler, and the median of the per-round ratios is checked, so a burst of load from another
    process that hits one round does not decide the outcome."""
    graph = archgraph.load("resnet50")
    x = torch.randn(1, 3, 224, 224)
    module = archgraph.compile(graph).eval()
    end_to_end, node_sum = [], []
    for _ in range(5):
        external_ms = statistics.median(_external_samples(module, x, 2, 9)) * 1e3
        result = profile(graph, warmup=2, repeats=9)
        module = result.module
        data = result.to_json()
        end_to_end.append(data["latency_ms"] / external_ms)
        node_sum.append(data["node_latency_sum_ms"] / external_ms)
    assert abs(statistics.median(end_to_end) - 1) < 0.15, end_to_end
    assert abs(statistics.median(node_sum) - 1) < 0.15, node_sum


def test_progress_reaches_its_total() -> None:
    reports: list[tuple[str, int, int]] = []
    profile(archgraph.load("resnet18"), warmup=1, repeats=2, progress=lambda *r: reports.append(r))
    dones = [done for _, done, _ in reports]
    assert dones == list(range(1, len(reports) + 1)) and reports[-1][1] == reports[-1][2]
    assert {what for what, _, _ in reports} == {
        "timing nodes",
        "timing end to end",
        "measuring memory",
    }


def test_interleaved_contenders_are_called_in_rounds() -> None:
    order: list[str] = []
    fns: dict[str, Any] = {name: (lambda n=name: order.append(n)) for name in ("a", "b")}
    time_interleaved(fns, [], warmup=1, repeats=2)
    assert order == ["a", "b"] * 3
