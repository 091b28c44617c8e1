"""channel_pool: the channel max and the channel mean of an NCHW map, side by side ([N, 2, H, W]),
the descriptor spatial attention reads (CBAM, Woo et al. 2018; MIRNet's dual attention unit,
Zamir et al. 2020: "f_SA = sigmoid(conv(GAP_c(x) ++ GMP_c(x)))", with the max first as in its code).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    ChannelRule,
    Cost,
    Emitter,
    OpDef,
    channels_fixed,
    need_rank,
    register_op,
)


def channel_max_mean(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, 2, H, W]: max over C, then mean over C."""
    return torch.cat((x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)), dim=1)


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [4], "NCHW")
    return x.with_shape((x.shape[0], 2, *x.shape[2:]))


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    """One comparison and one addition per input element, one division per output mean."""
    return Cost(flops=2 * ins[0].numel + out.numel // 2)


def _lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(channel_max_mean, (xs[0],))


CHANNEL_POOL = register_op(
    OpDef(
        name="channel_pool",
        doc="max and mean over the channels of NCHW, concatenated: [N, 2, H, W]",
        infer=_infer,
        cost=_cost,
        lower=_lower,
        channels=channels_fixed(ChannelRule("reduce", axis=1)),  # every channel feeds both maps
    )
)
