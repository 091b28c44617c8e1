"""Profiling: analytic costs (params, MACs, FLOPs, bytes) joined with measured latency and memory,
compared with baselines, written as a table, JSON, an HTML report, a Chrome trace or DOT.

    result = archgraph.profile.profile(archgraph.load("resnet50"), against=["eager"])
    result.print_table(console); text = result.json_text()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import fx

from archgraph.ir.graph import Graph
from archgraph.profile.compare import Contender, eager_baseline, inductor
from archgraph.profile.costs import NodeCost, node_costs, totals, uncounted
from archgraph.profile.measure import Timing, example_inputs, time_interleaved, time_nodes
from archgraph.profile.memory import (
    CPU_METHOD,
    CUDA_METHOD,
    ESTIMATE_METHOD,
    liveness_peak,
    measured_peak,
)
from archgraph.profile.phases import compiled_graph, timed_compile
from archgraph.profile.report import ContenderResult, PeakMemory, Profile

__all__ = ["NodeCost", "Profile", "Timing", "node_costs", "profile", "totals", "uncounted"]

ProgressCallback = Callable[[str, int, int], None]  # (what is running, steps done, steps in all)


@dataclass
class _Steps:
    """Turns the measurement's steps into (description, done, total) progress reports."""

    total: int
    report: ProgressCallback | None
    done: int = 0

    def advancer(self, description: str) -> Callable[[], None]:
        def advance() -> None:
            self.done += 1
            if self.report:
                self.report(description, self.done, self.total)

        return advance


@dataclass
class _Static:
    """What a contender compiled by archgraph adds beside its timing: costs, compile time."""

    compile_s: float
    graph: Graph


def profile(
    graph: Graph,
    *,
    opt_level: int = 0,
    weights: Mapping[str, torch.Tensor] | None = None,
    device: str = "cpu",
    warmup: int = 3,
    repeats: int = 20,
    measure: bool = True,
    compare: int | None = None,
    against: Sequence[str] = (),
    depth: int | None = None,
    load_s: float | None = None,
    progress: ProgressCallback | None = None,
) -> Profile:
    """Compile `graph` at `opt_level` and profile it at the graph's batch size on `device`.

    compare: also compile at this level and report ratios (before/after passes).
    against: baselines among "eager" and "inductor" (see archgraph.profile.compare).
    depth: group node rows by the first `depth` components of their dotted ids.
    load_s: the time it took to load the spec (reported beside the compile time).
    """
    module, compile_s, phases = timed_compile(graph, opt_level, weights)
    ir = compiled_graph(module, graph)
    result = Profile(
        graph.name,
        graph[graph.inputs[0]].type.shape[0],
        device,
        opt_level,
        compile_s,
        node_costs(ir),
        graph=ir,
        module=module,
        phases=phases,
        load_s=load_s,
        warmup=warmup,
        repeats=repeats,
        threads=torch.get_num_threads(),
        module_params=sum(p.numel() for p in module.parameters()),  # shared tensors once
        peak=PeakMemory(liveness_peak(ir), ESTIMATE_METHOD),
        depth=depth,
    )
    if not measure:
        return result
    module = result.module = module.to(device).eval()
    inputs = example_inputs(graph, device)
    steps = _Steps(2 * (warmup + repeats) + 1 + ("inductor" in against), progress)
    contenders, static = _contenders(
        graph, module, opt_level, weights, compare, against, inputs, device, steps
    )
    result.node_times = time_nodes(
        module,
        inputs,
        warmup=warmup,
        repeats=repeats,
        device=device,
        progress=steps.advancer("timing nodes"),
    )
    timings = time_interleaved(
        {"": module, **{c.name: c.fn for c in contenders}},
        inputs,
        warmup=warmup,
        repeats=repeats,
        device=device,
        progress=steps.advancer("timing end to end"),
    )
    result.end_to_end = timings[""]
    result.peak.measured_bytes = measured_peak(module, inputs, device)
    result.peak.measured_method = CUDA_METHOD if device.startswith("cuda") else CPU_METHOD
    steps.advancer("measuring memory")()
    result.contenders = [_result(c, timings[c.name], static.get(c.name)) for c in contenders]
    return result


def _contenders(
    graph: Graph,
    module: fx.GraphModule,
    opt_level: int,
    weights: Mapping[str, torch.Tensor] | None,
    compare: int | None,
    against: Sequence[str],
    inputs: list[torch.Tensor],
    device: str,
    steps: _Steps,
) -> tuple[list[Contender], dict[str, _Static]]:
    contenders: list[Contender] = []
    static: dict[str, _Static] = {}
    compiled: dict[int, fx.GraphModule] = {opt_level: module}
    if compare is not None:
        other, seconds, _ = timed_compile(graph, compare, weights)
        compiled[compare] = other.to(device).eval()
        name = f"archgraph -O{compare}"
        contenders.append(
            Contender(name, f"the same graph compiled at -O{compare}", compiled[compare])
        )
        static[name] = _Static(seconds, compiled_graph(other, graph))
    if against:
        if 0 not in compiled:
            compiled[0] = timed_compile(graph, 0, weights)[0].to(device).eval()
        eager, description, note = eager_baseline(graph, compiled[0], inputs)
        if "eager" in against:
            contenders.append(Contender("eager", description, eager, note=note))
        if "inductor" in against:
            contenders.append(inductor(eager, description, inputs))
            steps.advancer("torch.compile")()
    return contenders, static


def _result(c: Contender, timing: Timing, static: _Static | None) -> ContenderResult:
    if static is None:
        return ContenderResult(c.name, c.description, timing, c.first_call_s, c.note)
    t = totals(node_costs(static.graph))
    return ContenderResult(
        c.name,
        c.description,
        timing,
        c.first_call_s,
        c.note,
        compile_s=static.compile_s,
        params=t.params,
        macs=t.macs,
        flops=t.flops,
        peak_estimate_bytes=liveness_peak(static.graph),
    )
