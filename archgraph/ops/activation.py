"""Pointwise activations. Each maps one tensor to one of the same type, element by element."""

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
    explicit,
    pointwise_cost,
    register_op,
)


def identity_type(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return ins[0]


def _unary(
    name: str, fn: Callable[..., torch.Tensor], doc: str, flops: int = 1, **extra: Arg
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
        )
    )


RELU = _unary("relu", F.relu, "max(x, 0)")
RELU6 = _unary("relu6", F.relu6, "min(max(x, 0), 6)", flops=2)
GELU = _unary(
    "gelu",
    F.gelu,
    "Gaussian error linear unit (exact erf form, or the tanh approximation)",
    flops=8,
    approximate=Arg(STR, "none", choices=("none", "tanh")),
)
SILU = _unary("silu", F.silu, "x * sigmoid(x) (swish)", flops=4)
SIGMOID = _unary("sigmoid", torch.sigmoid, "1 / (1 + exp(-x))", flops=3)
TANH = _unary("tanh", torch.tanh, "hyperbolic tangent", flops=3)
HARDSWISH = _unary("hardswish", F.hardswish, "x * relu6(x + 3) / 6", flops=4)
HARDSIGMOID = _unary("hardsigmoid", F.hardsigmoid, "relu6(x + 3) / 6", flops=3)
