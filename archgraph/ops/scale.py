"""scale: multiply by a constant, y = x * factor (residual scaling in Inception-ResNet blocks)."""

from __future__ import annotations

import operator
from typing import Any

from torch import fx

from archgraph.ops.activation import identity_type
from archgraph.ops.registry import (
    FLOAT,
    PASS_ANY,
    Arg,
    Emitter,
    OpDef,
    pointwise_cost,
    register_op,
)


def _lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(operator.mul, (xs[0], args["factor"]))


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
    )
)
