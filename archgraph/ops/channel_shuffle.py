"""channel_shuffle: ShuffleNet's channel permutation (Zhang et al. 2018; Ma et al. 2018).

The C channels are read as a [groups, C / groups] grid and written transposed, so channel
g * (C / groups) + j moves to j * groups + g and the next grouped layer sees every group. It is
data movement: no MACs, no FLOPs. It permutes channels in a way that depends on their count, so
structured pruning cannot remove channels through it (its channel rule is "reduce").
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    INT,
    Arg,
    ChannelRule,
    Emitter,
    OpDef,
    ShapeMismatch,
    channels_fixed,
    free,
    need_rank,
    register_op,
)


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [4], "NCHW")
    g, c = args["groups"], x.shape[1]
    if g < 1 or c % g:
        raise ShapeMismatch(
            f"channels must divide into groups={g}",
            expected=f"channels divisible by {g}",
            found=f"{c} channels in {x}",
            input_index=0,
        )
    return x


def _lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(F.channel_shuffle, (xs[0], args["groups"]))


CHANNEL_SHUFFLE = register_op(
    OpDef(
        name="channel_shuffle",
        doc="ShuffleNet's channel shuffle: the channels as a groups x C/groups grid, transposed",
        args={"groups": Arg(INT)},
        infer=_infer,
        cost=free,
        lower=_lower,
        channels=channels_fixed(ChannelRule("reduce", axis=1)),
    )
)
