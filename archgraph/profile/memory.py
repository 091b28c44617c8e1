"""Peak activation memory of one forward call: an estimate from the IR and a measured figure.

Both count the bytes allocated during the call above what existed before it, so graph inputs and
weights are left out (the profile reports weight bytes separately).

- Estimate (`liveness_peak`): walk the nodes in the topological order the compiled module runs
  them, allocate each node's output when it runs and free it after its last consumer has run
  (graph outputs stay alive), and take the highest total. This is what torch.fx's generated code
  does: it drops every value after its last use. It counts each node's output as a fresh buffer
  (a view allocates nothing) and cannot see temporaries inside a node (an attention matrix).
- Measured on the CPU (`measured_peak`): one call under torch.profiler with profile_memory=True;
  the profiler records every allocation and free of the CPU allocator with its size, and the
  peak is the highest running total of (allocated - freed) over the call. Temporaries inside
  ops and library workspaces are included.
- Measured on CUDA: torch.cuda.max_memory_allocated() after reset_peak_memory_stats(), minus
  what was allocated before the call.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from archgraph.ir.graph import Graph

CPU_METHOD = "torch.profiler CPU allocator events (profile_memory=True): highest running total of bytes allocated minus freed during one call"
CUDA_METHOD = "torch.cuda.max_memory_allocated during one call, minus the bytes allocated before it"
ESTIMATE_METHOD = "liveness over the IR in topological order: each output allocated when produced, freed after its last consumer"


def liveness_peak(graph: Graph) -> int:
    """Estimated peak bytes of activations alive at once during one forward call."""
    order = list(graph.nodes())
    inputs = set(graph.inputs)
    keep = set(graph.outputs)
    last_use: dict[str, int] = {}
    for position, node in enumerate(order):
        last_use[node.id] = max(last_use.get(node.id, position), position)
        for src in node.inputs:
            last_use[src] = position
    freed_after: dict[int, list[str]] = defaultdict(list)
    for node_id, position in last_use.items():
        if node_id not in keep and node_id not in inputs:
            freed_after[position].append(node_id)
    alive = peak = 0
    for position, node in enumerate(order):
        if node.id not in inputs:
            alive += node.type.nbytes
            peak = max(peak, alive)
        alive -= sum(graph[dead].type.nbytes for dead in freed_after[position])
    return peak


def measured_peak(
    fn: Callable[..., Any], inputs: Sequence[torch.Tensor], device: str = "cpu"
) -> int:
    """Measured peak bytes allocated during one call of `fn(*inputs)` above what existed before."""
    with torch.inference_mode():
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            fn(*inputs)
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - before
        return _cpu_peak(fn, inputs)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration (C++ logging bypasses sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cpu_peak(fn: Callable[..., Any], inputs: Sequence[torch.Tensor]) -> int:
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_stderr():  # kineto logs its start and stop from C++
        prof.start()
    try:
        fn(*inputs)
    finally:
        with _quiet_stderr():
            prof.stop()
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    return max(itertools.accumulate((e.nbytes() for e in events), initial=0))
