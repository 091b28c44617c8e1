"""Peak activation memory: the liveness estimate and the CPU measurement against peaks worked out
by hand for small graphs whose every allocation is known."""

from __future__ import annotations

import archgraph
from archgraph import Builder
from archgraph.ir.graph import Graph
from archgraph.profile import profile
from archgraph.profile.measure import example_inputs
from archgraph.profile.memory import liveness_peak, measured_peak

N = 1 << 20  # elements per tensor
UNIT = 4 * N  # bytes of one float32 tensor of N elements


def diamond() -> Graph:
    """a = relu(x); b = relu(a); c = sigmoid(a); d = b + c."""
    b = Builder("diamond")
    x = b.input("x", [N])
    a = b.node("relu", x, name="a")
    left = b.node("relu", a, name="b")
    right = b.node("sigmoid", a, name="c")
    b.output(b.node("add", left, right, name="d"))
    return b.build()


def chain(length: int) -> Graph:
    b = Builder("chain")
    y = b.input("x", [N])
    for i in range(length):
        y = b.node("relu", y, name=f"r{i}")
    b.output(y)
    return b.build()


def two_outputs() -> Graph:
    """An output that is also consumed stays alive to the end: e = relu(x) (output), f = relu(e),
    g = relu(f) (output)."""
    b = Builder("two_outputs")
    x = b.input("x", [N])
    e = b.node("relu", x, name="e")
    f = b.node("relu", e, name="f")
    g = b.node("relu", f, name="g")
    b.output(e, g)
    return b.build()


def test_liveness_estimate_by_hand() -> None:
    # diamond: a(1) -> a,b (2) -> a,b,c (3) -> a freed, d: b,c,d (3) -> d (1): peak 3
    assert liveness_peak(diamond()) == 3 * UNIT
    # a chain holds an op's input and output at once: peak 2, whatever its length
    assert liveness_peak(chain(1)) == UNIT
    assert liveness_peak(chain(5)) == 2 * UNIT
    # e stays (an output): e,f (2) -> e,f,g (3): peak 3
    assert liveness_peak(two_outputs()) == 3 * UNIT


def test_measured_cpu_peak_equals_the_hand_computed_peak() -> None:
    for graph, units in ((diamond(), 3), (chain(5), 2), (two_outputs(), 3)):
        module = archgraph.compile(graph).eval()
        peak = measured_peak(module, example_inputs(graph))
        # the allocator may add a few small bookkeeping blocks, never a tensor's worth
        assert units * UNIT <= peak < units * UNIT + 64 * 1024, graph.name


def test_profile_reports_both_figures_with_their_methods() -> None:
    data = profile(diamond(), warmup=1, repeats=2).to_json()["peak_memory"]
    assert data["estimate_bytes"] == 3 * UNIT
    assert 3 * UNIT <= data["measured_bytes"] < 3 * UNIT + 64 * 1024
    assert "liveness" in data["estimate_method"] and "torch.profiler" in data["measured_method"]
