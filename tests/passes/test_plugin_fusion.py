"""A plugin adds an activation and a per-channel affine layer, each in one OpDef (its pointwise
step, its affine), and the passes and kernels take them with no other change: the affine folds
into the conv before it, both join a fused pointwise group, the group renders as a CUDA kernel
that NVRTC compiles, and every compiled level computes what -O0 computes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from archgraph.codegen.kernels.cuda import dispatch
from archgraph.codegen.kernels.cuda.groups import graph_kernels
from archgraph.codegen.kernels.cuda.nvrtc import compile_cubin
from torch import nn

import archgraph
from archgraph.ir.graph import Graph
from archgraph.ir.types import TensorType
from archgraph.ir.weights import bind_weights
from archgraph.ops import registry
from archgraph.ops.registry import (
    Affine,
    ChannelRule,
    OpDef,
    ParamSpec,
    PointwiseStep,
    channels_fixed,
    pointwise_cost,
)
from archgraph.passes import run_pipeline

ACT, AFF = "tanhshrink_plugin", "channel_affine_plugin"


def _same(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return ins[0]


class ChannelAffine(nn.Module):
    """y = x * weight + bias per channel (dim 1): a frozen batchnorm's arithmetic."""

    def __init__(self, args: dict[str, Any], ins: list[TensorType]) -> None:
        super().__init__()
        c = ins[0].shape[1]
        self.weight = nn.Parameter(torch.empty(c, device="meta"))
        self.bias = nn.Parameter(torch.empty(c, device="meta"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        view = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.reshape(view) + self.bias.reshape(view)


def _affine_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    c = (ins[0].shape[1],)
    return {"weight": ParamSpec(c, "ones"), "bias": ParamSpec(c, "zeros")}


def _scale_shift(
    args: dict[str, Any], tensor: Callable[[str], torch.Tensor], channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    return tensor("weight").double(), tensor("bias").double()


def _tanhshrink_lower(emit: Any, args: dict[str, Any], xs: list[Any]) -> Any:
    return emit.function(F.tanhshrink, (xs[0],))


def plugin_ops() -> None:
    """What a plugin module would contain: one register_op call per op."""
    archgraph.register_op(
        OpDef(
            name=ACT,
            doc="x - tanh(x)",
            infer=_same,
            cost=pointwise_cost(4),
            lower=_tanhshrink_lower,
            pointwise=True,
            channels=registry.PASS_ANY,
            steps=(PointwiseStep(ACT, "x - tanhf(x)", F.tanhshrink, flops=4),),
        )
    )
    archgraph.register_op(
        OpDef(
            name=AFF,
            doc="per-channel x * weight + bias",
            infer=_same,
            params=_affine_params,
            cost=pointwise_cost(2),
            module=ChannelAffine,
            channels=channels_fixed(
                ChannelRule("pass", axis=1, out_params={"weight": 0, "bias": 0})
            ),
            affine=Affine(_scale_shift),
        )
    )


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The plugin's ops, registered for this test only (the registries are restored after)."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_STEPS", dict(registry._STEPS))
    plugin_ops()
    yield


def _graph() -> Graph:
    """conv -> affine -> act -> affine -> act, with random weights (affine scales not 1)."""
    b = archgraph.Builder("plugin_fusion", batch=2)
    x = b.input("x", [3, 8, 8])
    y = b.conv2d(x, name="conv", out_channels=4, kernel_size=3, padding=1, bias=False)
    y = b.node(AFF, y, name="aff")
    y = b.node(ACT, y, name="act")
    y = b.node(AFF, y, name="aff2")
    b.output(b.node(ACT, y, name="act2"))
    graph = b.build()
    bind_weights(graph, None, 0)
    assert graph.weights is not None
    gen = torch.Generator().manual_seed(1)
    for key in ("aff.weight", "aff2.weight"):
        graph.weights[key] = torch.rand(4, generator=gen) + 0.5
    for key in ("aff.bias", "aff2.bias"):
        graph.weights[key] = torch.randn(4, generator=gen)
    return graph


def test_plugin_ops_fold_fuse_and_match_o0(plugin: None) -> None:
    graph = _graph()
    o1, _ = run_pipeline(graph.copy(), 1)
    ops = {n.id: n.op for n in o1.nodes()}
    # the first affine folded into the conv (which gained a bias); the rest is one group
    assert ops == {"x": "input", "conv": "conv2d", "act2": "fused_pointwise"}
    assert o1["conv"].args["bias"] is True
    assert o1["act2"].args["steps"] == ((ACT,), ("affine",), (ACT,))
    assert o1["act2"].inputs == ("conv",)

    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    # the reference: the plugin ops' own torch code at -O0, checked against the formula
    ref = archgraph.compile(graph, 0).eval()(x)
    w, b, w2, b2 = (graph.weights[k].reshape(1, -1, 1, 1)
                    for k in ("aff.weight", "aff.bias", "aff2.weight", "aff2.bias"))  # fmt: skip
    by_hand = F.conv2d(x, graph.weights["conv.weight"], padding=1) * w + b
    by_hand = F.tanhshrink(F.tanhshrink(by_hand) * w2 + b2)
    torch.testing.assert_close(ref, by_hand)
    for level in (1, 2):
        got = archgraph.compile(graph, level).eval()(x)
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
    with dispatch.simulate():  # the generated kernels' programs, run on the host
        got = archgraph.compile(graph, 1).eval()(x)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_plugin_step_renders_and_compiles_under_nvrtc(plugin: None, dtype: str) -> None:
    o1, _ = run_pipeline(_graph(), 1)
    groups = [g for g in graph_kernels(o1, dtype) if g.node == "act2"]
    assert len(groups) == 1
    kernels = groups[0].kernels
    assert any("forward" in k.title for k in kernels) and any(
        "backward" in k.title for k in kernels
    )
    source = groups[0].module_source
    assert "tanhf(" in source  # the plugin's expression, rendered
    cubin = compile_cubin(source, "sm_80")
    for k in kernels:
        assert k.name.encode() in cubin


def test_registries_are_left_as_they_were() -> None:
    """The fixture's registrations do not leak into other tests."""
    assert ACT not in registry.op_names() and AFF not in registry.op_names()
    assert ACT not in registry.pointwise_steps()
