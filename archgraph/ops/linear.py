"""linear: y = x W^T + b over the last dimension."""

from __future__ import annotations

from typing import Any

from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    BOOL,
    INT,
    Arg,
    ChannelRule,
    Cost,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    channels_fixed,
    register_op,
)


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = ins[0]
    if x.rank < 2:
        raise ShapeMismatch(
            "linear needs a batch and a feature dimension",
            expected="a tensor of rank >= 2",
            found=str(x),
            input_index=0,
        )
    if args["out_features"] < 1:
        raise ShapeMismatch(
            "out_features must be positive", expected=">= 1", found=str(args["out_features"])
        )
    return x.with_shape((*x.shape[:-1], args["out_features"]))


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    fan_in = ins[0].shape[-1]
    specs = {"weight": ParamSpec((args["out_features"], fan_in), "kaiming_uniform", fan_in=fan_in)}
    if args["bias"]:
        specs["bias"] = ParamSpec((args["out_features"],), "fan_in_uniform", fan_in=fan_in)
    return specs


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    macs = out.numel * ins[0].shape[-1]
    return Cost(macs=macs, flops=2 * macs + (out.numel if args["bias"] else 0))


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return nn.Linear(ins[0].shape[-1], args["out_features"], bias=args["bias"], device="meta")


LINEAR = register_op(
    OpDef(
        name="linear",
        fresh_output=True,
        doc="fully connected layer over the last dimension; in_features come from the input",
        args={"out_features": Arg(INT), "bias": Arg(BOOL, True)},
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
        channels=channels_fixed(
            ChannelRule(
                "produce",
                axis=-1,
                in_axis=-1,
                out_params={"weight": 0, "bias": 0},
                in_params={"weight": 1},
                resize=lambda a, n: {**a, "out_features": n},
            )
        ),
        fused="linear_fused",  # archgraph.ops.fused_conv: epilogue, prepack
        fold_axis=-1,
        stack=(-1, "out_features"),
    )
)
