"""Compile time, split into the phases archgraph.compile goes through.

archgraph.compile is timed as a whole, as a user calls it; it records the wall time of each of
its phases (binding weights, the pass pipeline, lowering) and of each pass in the compiled
module's meta, and the optimized graph, which the profile costs and draws. Without those keys
(a module from elsewhere) the profile shows the total only and the graph as given.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import fx

from archgraph.codegen.compile import IR_KEY, PASS_TIMES_KEY, PHASE_TIMES_KEY, compile_graph
from archgraph.ir.graph import Graph

__all__ = [
    "IR_KEY",
    "PASS_TIMES_KEY",
    "PHASE_TIMES_KEY",
    "Phase",
    "compiled_graph",
    "timed_compile",
]


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float


def timed_compile(
    graph: Graph, opt_level: int = 0, weights: Mapping[str, torch.Tensor] | None = None
) -> tuple[fx.GraphModule, float, list[Phase]]:
    """archgraph.compile(graph, opt_level, weights), its wall time in seconds, and its phases."""
    start = time.perf_counter()
    module = compile_graph(graph, opt_level, weights)
    total = time.perf_counter() - start
    phases = [Phase(name, float(s)) for name, s in (module.meta.get(PHASE_TIMES_KEY) or {}).items()]
    passes = module.meta.get(PASS_TIMES_KEY) or {}
    phases += [Phase(f"pass {name}", float(s)) for name, s in passes.items()]
    return module, total, phases


def compiled_graph(module: fx.GraphModule, graph: Graph) -> Graph:
    """The graph `module` was lowered from: the pipeline's optimized graph when it records one."""
    ir = module.meta.get(IR_KEY)
    return ir if isinstance(ir, Graph) else graph
