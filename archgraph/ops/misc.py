"""Graph inputs, identity, dropout and upsampling."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import fx, nn

from archgraph.ir.types import DTYPES, TensorType
from archgraph.ops.activation import identity_type
from archgraph.ops.registry import (
    BOOL,
    FLOAT,
    INTS,
    PAIR,
    PASS_ANY,
    PASS_NCHW,
    STR,
    Arg,
    Cost,
    Emitter,
    OpDef,
    ShapeMismatch,
    free,
    need_rank,
    optional,
    register_op,
)


def _input_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    shape = args["shape"]
    if not shape or any(d < 1 for d in shape):
        raise ShapeMismatch(
            "input dims must be positive",
            expected="a non-empty list of positive sizes",
            found=str(list(shape)),
        )
    return TensorType(tuple(shape), args["dtype"])


def _input_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    raise AssertionError("graph inputs are lowered as placeholders by codegen")


INPUT = register_op(
    OpDef(
        name="input",
        doc="a graph input; `shape` includes the batch dimension",
        args={"shape": Arg(INTS), "dtype": Arg(STR, "float32", choices=tuple(DTYPES))},
        arity=(0, 0),
        infer=_input_infer,
        cost=free,
        lower=_input_lower,
    )
)


def _identity_module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return nn.Identity()


IDENTITY = register_op(
    OpDef(
        name="identity",
        doc="returns its input",
        infer=identity_type,
        cost=free,
        module=_identity_module,
        channels=PASS_ANY,
        eval_identity=True,
        train_identity=True,
    )
)


def _dropout_module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return nn.Dropout(args["p"])


def _dropout_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    if not 0.0 <= args["p"] <= 1.0:
        raise ShapeMismatch(
            "dropout probability out of range", expected="0 <= p <= 1", found=str(args["p"])
        )
    return ins[0]


DROPOUT = register_op(
    OpDef(
        name="dropout",
        doc="zeroes elements with probability p while training; identity in eval mode",
        args={"p": Arg(FLOAT, 0.5)},
        infer=_dropout_infer,
        cost=free,
        module=_dropout_module,
        channels=PASS_ANY,
        eval_identity=True,
    )
)


def _upsample_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [4], "NCHW")
    size, scale = args["size"], args["scale_factor"]
    if (size is None) == (scale is None):
        raise ShapeMismatch(
            "upsample needs exactly one of size and scale_factor",
            expected="size or scale_factor",
            found=f"size={size}, scale_factor={scale}",
        )
    if size is not None:
        ho, wo = size
    else:
        ho, wo = int(x.shape[2] * scale), int(x.shape[3] * scale)
    if ho < 1 or wo < 1:
        raise ShapeMismatch(
            "upsample output is empty", expected="positive output size", found=f"{ho}x{wo}"
        )
    return x.with_shape((*x.shape[:2], ho, wo))


def interpolate_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    """F.interpolate by `size` or `scale_factor` (upsample, upsample3d); align_corners for the
    interpolating modes (all but nearest)."""
    kwargs: dict[str, Any] = {"mode": args["mode"]}
    if args["size"] is not None:
        kwargs["size"] = args["size"]
    else:
        kwargs["scale_factor"] = args["scale_factor"]
    if args["mode"] != "nearest":
        kwargs["align_corners"] = args["align_corners"]
    return emit.function(F.interpolate, (xs[0],), kwargs)


def _upsample_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    per = {"nearest": 0, "bilinear": 7, "bicubic": 30}[args["mode"]]
    return Cost(flops=per * out.numel)


UPSAMPLE = register_op(
    OpDef(
        name="upsample",
        doc="spatial resize by size or scale_factor (nearest, bilinear, bicubic)",
        args={
            "size": Arg(optional(PAIR), None),
            "scale_factor": Arg(optional(FLOAT), None),
            "mode": Arg(STR, "nearest", choices=("nearest", "bilinear", "bicubic")),
            "align_corners": Arg(BOOL, False),
        },
        infer=_upsample_infer,
        cost=_upsample_cost,
        lower=interpolate_lower,
        channels=PASS_NCHW,
    )
)
