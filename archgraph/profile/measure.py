"""Measured latency: per node (an fx Interpreter timing every node) and end to end (the module
called as a user calls it). Warm-up first, then repeats; the device is synchronized around
each timing on CUDA; medians are reported."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx

from archgraph.ir.graph import Graph


def example_inputs(graph: Graph, device: str = "cpu", seed: int = 0, batch: int | None = None) -> list[torch.Tensor]:
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


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


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


class _NodeTimer(fx.Interpreter):
    """Runs the module node by node, adding each node's wall time to its IR id."""

    def __init__(self, module: fx.GraphModule, device: str) -> None:
        super().__init__(module, garbage_collect_values=True)
        self.device = device
        self.current: dict[str, float] = defaultdict(float)

    def run_node(self, n: fx.Node) -> Any:
        if n.op in ("placeholder", "output"):
            return super().run_node(n)
        _sync(self.device)
        start = time.perf_counter()
        result = super().run_node(n)
        _sync(self.device)
        self.current[n.meta.get("ir_id", n.name)] += time.perf_counter() - start
        return result


def time_nodes(module: fx.GraphModule, inputs: Sequence[torch.Tensor], *, warmup: int = 2, repeats: int = 10,
               device: str = "cpu", progress: Callable[[], None] | None = None) -> dict[str, Timing]:
    """Per-IR-node latency over `repeats` runs after `warmup` runs."""
    samples: dict[str, list[float]] = defaultdict(list)
    with torch.inference_mode():
        for step in range(warmup + repeats):
            timer = _NodeTimer(module, device)
            timer.run(*inputs)
            if step >= warmup:
                for node_id, seconds in timer.current.items():
                    samples[node_id].append(seconds)
            if progress:
                progress()
    return {node_id: Timing.of(s) for node_id, s in samples.items()}


def time_module(fn: Callable[..., Any], inputs: Sequence[torch.Tensor], *, warmup: int = 3, repeats: int = 20,
                device: str = "cpu", progress: Callable[[], None] | None = None) -> Timing:
    """End-to-end latency of calling `fn(*inputs)`."""
    seconds = []
    with torch.inference_mode():
        for step in range(warmup + repeats):
            _sync(device)
            start = time.perf_counter()
            fn(*inputs)
            _sync(device)
            if step >= warmup:
                seconds.append(time.perf_counter() - start)
            if progress:
                progress()
    return Timing.of(seconds)
