"""Compile time per phase: the real calls of archgraph.compile are timed and left unwrapped
afterwards; per-pass times and the optimized graph are taken from the compiled module's meta."""

from __future__ import annotations

from typing import Any

import pytest

import archgraph
import archgraph.api
from archgraph import Builder
from archgraph.profile import profile
from archgraph.profile.phases import IR_KEY, PASS_TIMES_KEY, Phase, compiled_graph, timed_compile


def test_phases_time_the_real_calls_and_are_unwrapped_after() -> None:
    graph = archgraph.load("resnet18")
    originals = (archgraph.api.lower, archgraph.api.bind_weights)
    module, total, phases = timed_compile(graph)
    assert (archgraph.api.lower, archgraph.api.bind_weights) == originals
    assert [p.name for p in phases] == ["bind weights", "run pipeline", "lower"]
    assert all(p.seconds > 0 for p in phases) and sum(p.seconds for p in phases) <= total
    assert module.meta["archgraph_graph"] == "resnet18"


def test_pass_times_and_optimized_graph_come_from_module_meta(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a pass pipeline leaves in the module's meta shows in the profile: a phase per pass,
    and the optimized graph (here a stand-in with one node fewer) is the one costed."""
    real_compile = archgraph.api.compile
    b = Builder("optimized")
    x = b.input("x", [3, 8, 8])
    b.output(b.node("conv2d", x, name="conv", out_channels=4, kernel_size=3))
    optimized = b.build()

    def compile_with_passes(graph: Any, opt_level: int = 0, weights: Any = None) -> Any:
        module = real_compile(optimized, 0, weights)
        module.meta[PASS_TIMES_KEY] = {"fold_batchnorm": 0.25}
        module.meta[IR_KEY] = optimized
        return module

    monkeypatch.setattr(archgraph.api, "compile", compile_with_passes)
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
