"""Compile time per phase: archgraph.compile records its phases and passes in the compiled
module's meta, and the profile reads them (and the optimized graph) from there."""

from __future__ import annotations

from typing import Any

import pytest

import archgraph
import archgraph.api
from archgraph import Builder
from archgraph.profile import profile
from archgraph.profile.phases import IR_KEY, PASS_TIMES_KEY, Phase, compiled_graph, timed_compile


def test_phases_are_the_real_phases_of_compile() -> None:
    graph = archgraph.load("resnet18")
    module, total, phases = timed_compile(graph, 1)
    names = [p.name for p in phases]
    assert names[:3] == ["bind weights", "run pipeline", "lower"]
    assert names[3:] == [f"pass {name}" for name in archgraph.passes.LEVELS[1]]
    assert all(p.seconds > 0 for p in phases[:3]) and sum(p.seconds for p in phases[:3]) <= total
    assert module.meta["archgraph_graph"] == "resnet18"


def test_pass_times_and_optimized_graph_come_from_module_meta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a pass pipeline leaves in the module's meta shows in the profile: a phase per pass,
    and the optimized graph (here a stand-in with one node fewer) is the one costed."""
    real_compile = archgraph.profile.phases.compile_graph
    b = Builder("optimized")
    x = b.input("x", [3, 8, 8])
    b.output(b.node("conv2d", x, name="conv", out_channels=4, kernel_size=3))
    optimized = b.build()

    def compile_with_passes(graph: Any, opt_level: int = 0, weights: Any = None) -> Any:
        module = real_compile(optimized, 0, weights)
        module.meta[PASS_TIMES_KEY] = {"fold_batchnorm": 0.25}
        module.meta[IR_KEY] = optimized
        return module

    monkeypatch.setattr(archgraph.profile.phases, "compile_graph", compile_with_passes)
    b = Builder("original")
    x = b.input("x", [3, 8, 8])
    y = b.node("conv2d", x, name="conv", out_channels=4, kernel_size=3)
    b.output(b.node("batchnorm", y, name="bn"))
    original = b.build()
    module, _, phases = timed_compile(original, 1)
    assert Phase("pass fold_batchnorm", 0.25) in phases
    assert compiled_graph(module, original) is optimized
    data = profile(original, opt_level=1, measure=False).to_json()
    assert [n["id"] for n in data["nodes"]] == ["conv"]
    assert {"name": "pass fold_batchnorm", "seconds": 0.25} in data["compile_phases"]
