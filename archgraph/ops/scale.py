"""scale: multiply by a constant, y = x * factor (residual scaling in Inception-ResNet blocks)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
from torch import fx

from archgraph.ops.activation import identity_type
from archgraph.ops.registry import (
    FLOAT,
    PASS_ANY,
    Affine,
    Arg,
    Emitter,
    OpDef,
    PointwiseStep,
    pointwise_cost,
    register_op,
)


def _lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(operator.mul, (xs[0], args["factor"]))


def _scale_shift(
    args: dict[str, Any], tensor: Callable[[str], torch.Tensor], channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    factor = torch.full((channels,), args["factor"], dtype=torch.float64)
    return factor, torch.zeros(channels, dtype=torch.float64)


SCALE = register_op(
    OpDef(
        name="scale",
        doc="multiply by a constant factor (y = x * factor)",
        args={"factor": Arg(FLOAT)},
        infer=identity_type,
        cost=pointwise_cost(1),
        lower=_lower,
        pointwise=True,
        channels=PASS_ANY,
        steps=(
            PointwiseStep("scale", "x * factor", torch.mul, torch.Tensor.mul_, operand="float"),
        ),
        step=lambda args: ("scale", args["factor"]),
        affine=Affine(_scale_shift, axis=None),  # folds into the conv/linear before it
    )
)
