"""Compile time, split into the phases archgraph.compile goes through.

archgraph.compile is timed as a whole, as a user calls it. Its phases are timed by wrapping,
for the duration of that one call, each archgraph function the API module calls (binding
weights, lowering, and whatever pass pipeline it calls once passes exist): the profile then
shows the real calls of the real compile, without a second copy of its steps here.

Two light hooks for the pass pipeline: per-pass times are read from the compiled module's
`meta["archgraph_pass_times"]` (pass name -> seconds) and the optimized graph, which the profile
costs and draws, from `meta["archgraph_ir"]` (an ir.Graph); without them the profile shows the
phases above and the graph as given.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import fx

import archgraph.api
from archgraph.ir.graph import Graph

PASS_TIMES_KEY = "archgraph_pass_times"
IR_KEY = "archgraph_ir"


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float


def _phase_functions(api: ModuleType) -> dict[str, Callable[..., Any]]:
    """archgraph functions the API module imported from elsewhere: the steps compile calls."""
    return {
        name: value
        for name, value in vars(api).items()
        if inspect.isfunction(value)
        and value.__module__.startswith("archgraph")
        and value.__module__ != api.__name__
    }


@contextmanager
def _timing(api: ModuleType, sink: dict[str, float]) -> Iterator[None]:
    originals = _phase_functions(api)

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                sink[name] = sink.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    for name, fn in originals.items():
        setattr(api, name, timed(name, fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(api, name, fn)


def timed_compile(
    graph: Graph, opt_level: int = 0, weights: Mapping[str, torch.Tensor] | None = None
) -> tuple[fx.GraphModule, float, list[Phase]]:
    """archgraph.compile(graph, opt_level, weights), its wall time in seconds, and its phases."""
    sink: dict[str, float] = {}
    with _timing(archgraph.api, sink):
        start = time.perf_counter()
        module = archgraph.api.compile(graph, opt_level, weights)
        total = time.perf_counter() - start
    phases = [Phase(name.replace("_", " "), s) for name, s in sink.items()]
    passes = module.meta.get(PASS_TIMES_KEY) or {}
    phases += [Phase(f"pass {name}", float(s)) for name, s in passes.items()]
    return module, total, phases


def compiled_graph(module: fx.GraphModule, graph: Graph) -> Graph:
    """The graph `module` was lowered from: the pipeline's optimized graph when it records one."""
    ir = module.meta.get(IR_KEY)
    return ir if isinstance(ir, Graph) else graph
