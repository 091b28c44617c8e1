"""matmul (batched, with broadcasting of the leading dims) and softmax."""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.elementwise import broadcast
from archgraph.ops.registry import (
    INT,
    Arg,
    ChannelRule,
    Cost,
    Emitter,
    OpDef,
    ShapeMismatch,
    pointwise_cost,
    register_op,
)
from archgraph.ops.shape import _axis


def _matmul_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    a, b = ins
    if a.rank < 2 or b.rank < 2:
        raise ShapeMismatch(
            "matmul needs matrices", expected="two tensors of rank >= 2", found=f"{a} and {b}"
        )
    if a.shape[-1] != b.shape[-2]:
        raise ShapeMismatch(
            "matmul inner dims differ",
            expected=f"input 2 of shape [..., {a.shape[-1]}, n] (input 1 is {a})",
            found=str(b),
            input_index=1,
        )
    lead = broadcast(a.with_shape(a.shape[:-2]), b.with_shape(b.shape[:-2]), "matmul batch dims")
    return a.with_shape((*lead.shape, a.shape[-2], b.shape[-1]))


def _matmul_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    macs = out.numel * ins[0].shape[-1]
    return Cost(macs=macs, flops=2 * macs)


def _matmul_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(torch.matmul, (xs[0], xs[1]))


MATMUL = register_op(
    OpDef(
        name="matmul",
        doc="batched matrix product (attention scores and mixing)",
        arity=(2, 2),
        infer=_matmul_infer,
        cost=_matmul_cost,
        lower=_matmul_lower,
    )
)


def _softmax_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    _axis(args["dim"], ins[0].rank, "softmax dim")
    return ins[0]


def _softmax_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(torch.softmax, (xs[0],), {"dim": args["dim"]})


SOFTMAX = register_op(
    OpDef(
        name="softmax",
        doc="exp-normalize along a dim",
        args={"dim": Arg(INT, -1)},
        infer=_softmax_infer,
        cost=pointwise_cost(5),
        lower=_softmax_lower,
        channels=lambda args, ins: ChannelRule("reduce", axis=args["dim"]),
    )
)
