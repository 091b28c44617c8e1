"""compile: bind a graph's weights, run the -O level's pass pipeline, lower to a
torch.fx.GraphModule (re-exported as archgraph.compile). It lives in the back end's layer,
below the profiler, which times it, and the API, which calls it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import torch
from archgraph.codegen.fx import lower
from torch import fx

from archgraph.errors import SpecError
from archgraph.ir.graph import Graph
from archgraph.ir.weights import bind_weights
from archgraph.passes import LEVELS, PassReport, run_pipeline
from archgraph.passes.pipelines import check_mode

OPT_LEVELS = tuple(LEVELS)
# What compile records in the module's meta (read by the profiler): wall times of its phases and
# of each pass (name -> seconds), the optimized graph, and the full per-pass reports.
PHASE_TIMES_KEY = "archgraph_phase_times"
PASS_TIMES_KEY = "archgraph_pass_times"
IR_KEY = "archgraph_ir"
REPORTS_KEY = "archgraph_pass_reports"


def compile_graph(
    graph: Graph,
    opt_level: int = 0,
    weights: Mapping[str, torch.Tensor] | None = None,
    *,
    seed: int = 0,
    passes: str | Sequence[str] | None = None,
    report: list[PassReport] | None = None,
    mode: str = "eval",
) -> fx.GraphModule:
    """Bind weights, optimize at `opt_level`, lower to a torch.fx.GraphModule.

    `weights` (a state_dict keyed '<node id>.<param>', e.g. a torchvision model's) is bound
    strictly before any pass runs; without it the graph keeps weights it already has, or gets a
    deterministic initialization from `seed`. `passes` ('a,b,c' or a list of pass names)
    replaces the level's pipeline; `report`, if given, receives one PassReport per pass.
    mode="eval": -O1/-O2 modules compute what -O0 computes in eval mode (they are for
    inference). mode="train": the level's train pipeline (archgraph.passes.pipelines): the
    module's forward and backward in training equal -O0's, it keeps -O0's parameter and buffer
    names, starts in training mode, and after .eval() computes what -O0 computes in eval mode.
    """
    check_mode(mode)
    if opt_level not in OPT_LEVELS:
        raise SpecError(
            f"optimization level -O{opt_level} is not available",
            expected=" or ".join(f"-O{o}" for o in OPT_LEVELS),
            found=f"-O{opt_level}",
        )
    phases: dict[str, float] = {}
    start = time.perf_counter()
    graph = graph.copy()
    # bind_weights makes fresh tensors that nobody else holds: lowering can take them uncopied
    fresh_weights = weights is not None or graph.weights is None
    if fresh_weights:
        bind_weights(graph, weights, seed)
    phases["bind weights"] = time.perf_counter() - start
    start = time.perf_counter()
    graph, reports = run_pipeline(graph, opt_level, passes, mode)
    phases["run pipeline"] = time.perf_counter() - start
    if report is not None:
        report.extend(reports)
    start = time.perf_counter()
    module = lower(graph, copy_weights=not fresh_weights)
    phases["lower"] = time.perf_counter() - start
    times: dict[str, float] = {}
    for r in reports:
        times[r.name] = times.get(r.name, 0.0) + r.seconds
    module.meta[PHASE_TIMES_KEY] = phases
    module.meta[PASS_TIMES_KEY] = times
    module.meta[IR_KEY] = graph
    module.meta[REPORTS_KEY] = reports
    return module.train() if mode == "train" else module
