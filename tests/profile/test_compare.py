"""Baselines timed beside the compiled module: torch.compile (inductor) with its compiling first
call reported apart from its steady-state latency, and before/after comparisons of -O levels."""

from __future__ import annotations

import pytest

import archgraph
from archgraph.errors import ArchgraphError
from archgraph.profile import profile
from archgraph.profile.compare import parse_against, parse_opt_level


def tiny() -> archgraph.Graph:
    b = archgraph.Builder("tiny_convnet")
    x = b.input("x", [3, 32, 32])
    y = b.node("conv2d", x, name="conv", out_channels=16, kernel_size=3, padding=1)
    y = b.node("relu", b.node("batchnorm", y, name="bn"), name="act")
    y = b.node("flatten", b.node("adaptive_avgpool2d", y, name="pool"), name="flat")
    b.output(b.node("linear", y, name="fc", out_features=10))
    return b.build()


def test_against_inductor_and_compare_levels() -> None:
    steps: list[str] = []
    result = profile(
        tiny(),
        warmup=2,
        repeats=5,
        compare=0,
        against=["eager", "inductor"],
        progress=lambda what, done, total: steps.append(what),
    )
    data = result.to_json()
    before, eager, inductor = data["comparisons"]
    assert before["name"] == "archgraph -O0" and before["ratios"]["macs"] == 1.0
    assert before["compile_s"] > 0 and before["ratios"]["compile_s"] == pytest.approx(
        data["compile_s"] / before["compile_s"]
    )
    assert eager["description"].startswith("archgraph -O0 fx module")
    assert inductor["name"] == "inductor" and inductor["description"].startswith("torch.compile(")
    assert (
        inductor["first_call_s"] > 0 and inductor["first_call_s"] * 1e3 > inductor["latency_ms"]
    )  # compile apart
    for c in (before, eager, inductor):
        assert c["ratios"]["latency_ms"] == pytest.approx(data["latency_ms"] / c["latency_ms"])
    assert "torch.compile" in steps


def test_flag_parsing() -> None:
    assert [parse_opt_level(t) for t in ("-O0", "O2", "1")] == [0, 2, 1]
    assert parse_against("inductor, eager,eager") == ["inductor", "eager"]
    with pytest.raises(ArchgraphError):
        parse_against("tvm")
    with pytest.raises(ArchgraphError):
        parse_opt_level("fast")
