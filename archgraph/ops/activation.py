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
    flops: int,
    expr: str,
    inplace: Callable[[torch.Tensor], torch.Tensor],
    *,
    grad_from_output: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    more_steps: tuple[PointwiseStep, ...] = (),
    step: StepOf | None = None,
    **extra: Arg,
) -> OpDef:
    """A unary activation computing `fn`; its step (same name) is `expr` in C, `fn` and
    `inplace` in torch (and `grad_from_output`, if its derivative is a function of its
    output)."""

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
            steps=(
                PointwiseStep(name, expr, fn, inplace, flops, grad_from_output=grad_from_output),
                *more_steps,
            ),
            step=step,
        )
    )


def _gelu_tanh(t: torch.Tensor) -> torch.Tensor:
    return F.gelu(t, approximate="tanh")


def _clamp6_(t: torch.Tensor) -> torch.Tensor:
    return t.clamp_(0.0, 6.0)


def _inplace(fn: Callable[..., torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """fn(t, inplace=True)."""
    return lambda t: fn(t, inplace=True)


def _overwrite(fn: Callable[..., torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """t overwritten with fn(t) (torch has no in-place form)."""
    return lambda t: t.copy_(fn(t))


_TANH_FORM = "0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)))"

# name, torch function, doc, flops, C expression, in-place torch function
RELU = _unary(
    "relu", F.relu, "max(x, 0)", 1, "fmaxf(x, 0.0f)", torch.relu_,
    grad_from_output=lambda g, y: torch.ops.aten.threshold_backward(g, y, 0),
)  # fmt: skip
RELU6 = _unary("relu6", F.relu6, "min(max(x, 0), 6)", 2, "fminf(fmaxf(x, 0.0f), 6.0f)", _clamp6_)
SIGMOID = _unary(
    "sigmoid", torch.sigmoid, "1 / (1 + exp(-x))", 3, "1.0f / (1.0f + expf(-x))", torch.sigmoid_,
    grad_from_output=torch.ops.aten.sigmoid_backward,
)  # fmt: skip
TANH = _unary(
    "tanh", torch.tanh, "hyperbolic tangent", 3, "tanhf(x)", torch.tanh_,
    grad_from_output=torch.ops.aten.tanh_backward,
)  # fmt: skip
SILU = _unary(
    "silu", F.silu, "x * sigmoid(x) (swish)", 4, "x / (1.0f + expf(-x))", _inplace(F.silu)
)
HARDSWISH = _unary(
    "hardswish",
    F.hardswish,
    "x * relu6(x + 3) / 6",
    4,
    "x * fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f",
    _inplace(F.hardswish),
)
HARDSIGMOID = _unary(
    "hardsigmoid",
    F.hardsigmoid,
    "relu6(x + 3) / 6",
    3,
    "fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f",
    _inplace(F.hardsigmoid),
)
GELU = _unary(
    "gelu",
    F.gelu,
    "Gaussian error linear unit (exact erf form, or the tanh approximation)",
    8,
    "0.5f * x * (1.0f + erff(x * 0.70710678118654752f))",
    _overwrite(F.gelu),
    # the tanh approximation is a step of its own (10 flops)
    more_steps=(PointwiseStep("gelu_tanh", _TANH_FORM, _gelu_tanh, _overwrite(_gelu_tanh), 10),),
    step=lambda args: ("gelu",) if args["approximate"] == "none" else ("gelu_tanh",),
    approximate=Arg(STR, "none", choices=("none", "tanh")),
)
