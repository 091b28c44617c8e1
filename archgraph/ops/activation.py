"""Pointwise activations. Each maps one tensor to one of the same type, element by element, and
declares its step of a fused pointwise chain: the C expression the kernel renderer emits and the
torch functions the CPU path runs (see archgraph.ops.registry.PointwiseStep)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    PASS_ANY,
    STR,
    Arg,
    Emitter,
    OpDef,
    PointwiseStep,
    StepOf,
    explicit,
    pointwise_cost,
    register_op,
)


def identity_type(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return ins[0]


def _unary(
    name: str,
    fn: Callable[..., torch.Tensor],
    doc: str,
    flops: int = 1,
    *,
    steps: tuple[PointwiseStep, ...],
    step: StepOf | None = None,
    **extra: Arg,
) -> OpDef:
    def lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
        return emit.function(fn, (xs[0],), explicit(args, extra))

    return register_op(
        OpDef(
            name=name,
            doc=doc,
            args=dict(extra),
            infer=identity_type,
            cost=pointwise_cost(flops),
            lower=lower,
            pointwise=True,
            channels=PASS_ANY,
            steps=steps,
            step=step,
        )
    )


def _step(name: str, expr: str, flops: int, cpu: Callable[..., torch.Tensor],
          cpu_inplace: Callable[..., torch.Tensor]) -> tuple[PointwiseStep]:  # fmt: skip
    return (PointwiseStep(name, expr, cpu, cpu_inplace, flops),)


def _gelu_tanh(t: torch.Tensor) -> torch.Tensor:
    return F.gelu(t, approximate="tanh")


RELU = _unary(
    "relu", F.relu, "max(x, 0)",
    steps=_step("relu", "fmaxf(x, 0.0f)", 1, torch.relu, torch.relu_),
)  # fmt: skip
RELU6 = _unary(
    "relu6", F.relu6, "min(max(x, 0), 6)", flops=2,
    steps=_step("relu6", "fminf(fmaxf(x, 0.0f), 6.0f)", 2, F.relu6,
                lambda t: t.clamp_(0.0, 6.0)),
)  # fmt: skip
SIGMOID = _unary(
    "sigmoid", torch.sigmoid, "1 / (1 + exp(-x))", flops=3,
    steps=_step("sigmoid", "1.0f / (1.0f + expf(-x))", 3, torch.sigmoid, torch.sigmoid_),
)  # fmt: skip
TANH = _unary(
    "tanh", torch.tanh, "hyperbolic tangent", flops=3,
    steps=_step("tanh", "tanhf(x)", 3, torch.tanh, torch.tanh_),
)  # fmt: skip
SILU = _unary(
    "silu", F.silu, "x * sigmoid(x) (swish)", flops=4,
    steps=_step("silu", "x / (1.0f + expf(-x))", 4, F.silu,
                lambda t: F.silu(t, inplace=True)),
)  # fmt: skip
HARDSWISH = _unary(
    "hardswish", F.hardswish, "x * relu6(x + 3) / 6", flops=4,
    steps=_step("hardswish", "x * fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f", 4, F.hardswish,
                lambda t: F.hardswish(t, inplace=True)),
)  # fmt: skip
HARDSIGMOID = _unary(
    "hardsigmoid", F.hardsigmoid, "relu6(x + 3) / 6", flops=3,
    steps=_step("hardsigmoid", "fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f", 3, F.hardsigmoid,
                lambda t: F.hardsigmoid(t, inplace=True)),
)  # fmt: skip
GELU = _unary(
    "gelu",
    F.gelu,
    "Gaussian error linear unit (exact erf form, or the tanh approximation)",
    flops=8,
    approximate=Arg(STR, "none", choices=("none", "tanh")),
    # the two forms are two steps: erf, and the tanh approximation (10 flops)
    steps=(
        *_step(
            "gelu",
            "0.5f * x * (1.0f + erff(x * 0.70710678118654752f))",
            8,
            F.gelu,
            lambda t: t.copy_(F.gelu(t)),
        ),
        *_step(
            "gelu_tanh",
            "0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)))",
            10,
            _gelu_tanh,
            lambda t: t.copy_(_gelu_tanh(t)),
        ),
    ),
    step=lambda args: ("gelu",) if args["approximate"] == "none" else ("gelu_tanh",),
)
