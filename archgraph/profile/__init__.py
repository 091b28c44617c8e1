"""Profiling: analytic costs (params, MACs, FLOPs) joined with measured latency."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from archgraph.api import timed_compile
from archgraph.ir.graph import Graph
from archgraph.profile.costs import NodeCost, node_costs, totals
from archgraph.profile.measure import Timing, example_inputs, time_module, time_nodes
from archgraph.profile.report import Profile

__all__ = ["NodeCost", "Profile", "Timing", "node_costs", "profile", "totals"]


def profile(graph: Graph, *, opt_level: int = 0, weights: Mapping[str, torch.Tensor] | None = None,
            device: str = "cpu", warmup: int = 3, repeats: int = 20, measure: bool = True,
            progress: Callable[[], None] | None = None) -> Profile:
    """Compile `graph` and profile it at the graph's batch size on `device`."""
    module, compile_s = timed_compile(graph, opt_level, weights)
    result = Profile(graph.name, graph[graph.inputs[0]].type.shape[0], device, opt_level, compile_s, node_costs(graph))
    if measure:
        module = module.to(device).eval()
        inputs = example_inputs(graph, device)
        result.node_times = time_nodes(module, inputs, warmup=warmup, repeats=repeats, device=device, progress=progress)
        result.end_to_end = time_module(module, inputs, warmup=warmup, repeats=repeats, device=device, progress=progress)
    return result
