"""layernorm2d: layer normalization over the channels of an NCHW tensor (ConvNeXt's
LayerNorm2d in torchvision and timm): each pixel's C values are normalized, then scaled by
`weight` and shifted by `bias` ([C] each, a reference's `<node>.weight` / `<node>.bias`).

`layernorm` normalizes the last dim; for NCHW that would be W, so a 4-D `layernorm` asks for
an explicit axis and points here. Lowered as the references do it: move the channels last,
layer_norm, move them back. The mean and variance mix the channels: pruning cannot remove them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    BOOL,
    FLOAT,
    Arg,
    ChannelRule,
    OpDef,
    ParamSpec,
    channels_fixed,
    need_rank,
    pointwise_cost,
    register_op,
)


class LayerNorm2d(nn.LayerNorm):
    """nn.LayerNorm over dim 1 of [N, C, H, W]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(
            x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps
        )
        return y.permute(0, 3, 1, 2)


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return need_rank(ins, [4], "NCHW")


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    if not args["elementwise_affine"]:
        return {}
    c = (ins[0].shape[1],)
    specs = {"weight": ParamSpec(c, "ones")}
    if args["bias"]:
        specs["bias"] = ParamSpec(c, "zeros")
    return specs


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return LayerNorm2d(
        ins[0].shape[1],
        eps=args["eps"],
        elementwise_affine=args["elementwise_affine"],
        bias=args["bias"],
        device="meta",
    )


LAYERNORM2D = register_op(
    OpDef(
        name="layernorm2d",
        doc="layer normalization over the channels (dim 1) of NCHW (ConvNeXt's LayerNorm2d)",
        args={
            "eps": Arg(FLOAT, 1e-5),
            "elementwise_affine": Arg(BOOL, True),
            "bias": Arg(BOOL, True),
        },
        infer=_infer,
        params=_params,
        cost=pointwise_cost(5),
        module=_module,
        channels=channels_fixed(ChannelRule("reduce", axis=1)),
    )
)
