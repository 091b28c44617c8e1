"""prelu: the parametric ReLU, y = max(x, 0) + a * min(x, 0) (He et al. 2015), with torch.nn.PReLU's
semantics: `num_parameters` slopes, 1 (one slope for every element) or the channel count (one per
channel on dim 1), each starting at `init` (0.25); the slopes are stored at `<node id>.weight`, the
key an nn.PReLU at the same path holds, so a reference's state_dict loads strictly.

Not a fused pointwise step: the pointwise-fusion machinery passes per-channel tensors only as the
scale and shift of an affine (PointwiseStep operand "params" is filled from OpDef.affine), and
PReLU is not affine, so it stays its own node (nn.PReLU) at every level.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    FLOAT,
    INT,
    PASS_ANY,
    Arg,
    ChannelRule,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    pointwise_cost,
    register_op,
)


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x, n = ins[0], args["num_parameters"]
    channels = x.shape[1] if x.rank >= 2 else None
    if n != 1 and n != channels:
        raise ShapeMismatch(
            "prelu has one slope, or one per channel (dim 1 of its input)",
            expected=f"num_parameters 1 or {channels}" if channels else "num_parameters 1",
            found=f"num_parameters={n} on {x}",
            input_index=0,
        )
    return x


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    return {"weight": ParamSpec((args["num_parameters"],), "constant", value=args["init"])}


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return nn.PReLU(args["num_parameters"], init=args["init"], device="meta")


def _resize(args: dict[str, Any], n: int) -> dict[str, Any]:
    return {**args, "num_parameters": n}


def _channels(args: dict[str, Any], ins: list[TensorType]) -> ChannelRule:
    if args["num_parameters"] == 1:  # one slope for all: any channel dim passes through
        return PASS_ANY(args, ins)
    # one slope per channel: it goes with its channel, and the count follows the kept channels
    return ChannelRule("pass", axis=1, out_params={"weight": 0}, resize=_resize)


PRELU = register_op(
    OpDef(
        name="prelu",
        doc="parametric ReLU max(x, 0) + a * min(x, 0), slopes a at '<node>.weight' (nn.PReLU)",
        args={
            "num_parameters": Arg(INT, 1, doc="1 (one slope) or the channel count (dim 1)"),
            "init": Arg(FLOAT, 0.25, doc="the slopes' initial value (before weights load)"),
        },
        infer=_infer,
        params=_params,
        cost=pointwise_cost(2),  # a comparison and a multiplication per element
        module=_module,
        channels=_channels,
    )
)
