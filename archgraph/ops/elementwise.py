"""Binary elementwise ops with PyTorch broadcasting: add (residual connections) and mul (gating)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    ChannelRule,
    Emitter,
    OpDef,
    PointwiseStep,
    ShapeMismatch,
    channels_fixed,
    pointwise_cost,
    register_op,
)


def broadcast(a: TensorType, b: TensorType, what: str) -> TensorType:
    """The broadcast type of a and b, or a ShapeMismatch that names the dimension at fault."""
    ra, rb = a.rank, b.rank
    out = []
    for i in range(1, max(ra, rb) + 1):
        da = a.shape[-i] if i <= ra else 1
        db = b.shape[-i] if i <= rb else 1
        if da != db and 1 not in (da, db):
            dim = max(ra, rb) - i
            label = "channels (dim 1)" if dim == 1 else f"dim {dim}"
            raise ShapeMismatch(
                f"{what}: {label} differ: {da} vs {db}",
                expected=f"a shape that broadcasts with input 1 {a}",
                found=str(b),
                input_index=1,
            )
        out.append(max(da, db))
    return a.with_shape(tuple(reversed(out)))


def _binary(name: str, fn: Callable[[Any, Any], Any], doc: str, step: PointwiseStep) -> OpDef:
    def infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
        return broadcast(ins[0], ins[1], f"{name} of mismatched shapes")

    def lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
        return emit.function(fn, (xs[0], xs[1]))

    return register_op(
        OpDef(
            name=name,
            doc=doc,
            arity=(2, 2),
            infer=infer,
            cost=pointwise_cost(1),
            lower=lower,
            pointwise=True,
            channels=channels_fixed(ChannelRule("couple")),
            steps=(step,),  # in a fused group: the running value with the other input
        )
    )


ADD = _binary(
    "add",
    operator.add,
    "elementwise sum with broadcasting (residual connections)",
    PointwiseStep("add", "x + y", torch.add, torch.Tensor.add_, operand="input"),
)
MUL = _binary(
    "mul",
    operator.mul,
    "elementwise product with broadcasting (gating, attention scaling)",
    PointwiseStep("mul", "x * y", torch.mul, torch.Tensor.mul_, operand="input"),
)
