"""layer_scale: a learned per-channel scale, y = x * gamma (Touvron et al. 2021, CaiT; ConvNeXt,
Liu et al. 2022), gamma starting at `init_value`.

The tensor is stored at the node's own id, so a spec names it where a reference keeps it: a node
`features.1.0.layer_scale` holds torchvision ConvNeXt's `features.1.0.layer_scale`, a node
`blocks.0.ls1.gamma` timm's LayerScale `blocks.0.ls1.gamma`, a node `scale.weight` a
`<module>.weight`. `axis` is the channel dim of the input (1 for NCHW, -1 for channels-last or
tokens); `keepdims` stores gamma as [C, 1, ..., 1] (one 1 per dim after the axis, torchvision's
ConvNeXt [C, 1, 1]) instead of [C] (timm).
"""

from __future__ import annotations

import operator
from typing import Any

from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    BOOL,
    FLOAT,
    INT,
    Arg,
    ChannelRule,
    Emitter,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    pointwise_cost,
    register_op,
)


def _axis(args: dict[str, Any], x: TensorType) -> int:
    axis = args["axis"]
    if not -x.rank <= axis < x.rank or axis % x.rank == 0:
        raise ShapeMismatch(
            "layer_scale axis must be the channel dim of the input, not the batch",
            expected=f"a dim in [1, {x.rank - 1}] (or its negative form)",
            found=f"axis={axis} on {x}",
            input_index=0,
        )
    return axis % x.rank


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    _axis(args, ins[0])
    return ins[0]


def _shape(args: dict[str, Any], x: TensorType) -> tuple[int, ...]:
    axis = _axis(args, x)
    trailing = x.rank - 1 - axis
    return (x.shape[axis], *(1,) * trailing) if args["keepdims"] else (x.shape[axis],)


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    return {"": ParamSpec(_shape(args, ins[0]), "constant", value=args["init_value"])}


def _lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    gamma, axis = emit.own_tensor(), args["axis"]
    if args["keepdims"] or axis == -1:
        return emit.function(operator.mul, (xs[0], gamma))  # gamma broadcasts as stored
    if axis < -1:  # [C] before -axis - 1 trailing dims: view it as [C, 1, ..., 1]
        return emit.function(
            operator.mul, (xs[0], emit.method("view", (gamma, -1, *(1,) * (-1 - axis))))
        )
    # a dim counted from the front (the rank is not known here): move it last and back
    moved = emit.method("movedim", (xs[0], axis, -1))
    return emit.method("movedim", (emit.function(operator.mul, (moved, gamma)), -1, axis))


def _channels(args: dict[str, Any], ins: list[TensorType]) -> ChannelRule:
    return ChannelRule("pass", axis=_axis(args, ins[0]), out_params={"": 0})


LAYER_SCALE = register_op(
    OpDef(
        name="layer_scale",
        doc="learned per-channel scale x * gamma, gamma stored at the node's own id",
        args={
            "axis": Arg(INT, 1, doc="the channel dim: 1 for NCHW, -1 for channels-last or tokens"),
            "keepdims": Arg(BOOL, False, doc="store gamma as [C, 1, ..., 1] rather than [C]"),
            "init_value": Arg(FLOAT, 1e-6, doc="gamma's initial value (before weights load)"),
        },
        infer=_infer,
        params=_params,
        cost=pointwise_cost(1),
        lower=_lower,
        channels=_channels,
    )
)
