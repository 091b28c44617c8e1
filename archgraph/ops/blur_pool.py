"""blur_pool2d: anti-aliased downsampling (Zhang 2019, "Making Convolutional Networks Shift-Invariant
Again"; MIRNet's `Downsample`), over NCHW: pad, blur every channel with a fixed binomial filter,
keep every `stride`-th pixel.

The filter of size k is the outer product of the binomial row (1, k-1 choose 1, ..., 1) with
itself, divided by its sum (k = 3: [1, 2, 1] x [1, 2, 1] / 16), applied depthwise (one copy per
channel). Padding is floor((k - 1) / 2) before and ceil((k - 1) / 2) after on each spatial dim,
reflected by default, so the output is ceil(H / stride) x ceil(W / stride).

The filter is a constant computed where it is used, not state: it has no state_dict key and
nothing trains or prunes it (the reference implementation's persistent `filt` buffer, one copy
per channel, holds the same numbers). Cost: the depthwise conv's k * k MACs per output element,
as torch.utils.flop_counter counts the convolution it lowers to.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    INT,
    PASS_NCHW,
    STR,
    Arg,
    Cost,
    Emitter,
    OpDef,
    ShapeMismatch,
    explicit,
    need_rank,
    register_op,
)

_PAD_MODES = {"reflect": "reflect", "replicate": "replicate", "zeros": "constant"}


def binomial_filter(filt_size: int) -> torch.Tensor:
    """The normalized 2-D binomial filter [k, k] (float64)."""
    row = torch.tensor([math.comb(filt_size - 1, i) for i in range(filt_size)], dtype=torch.float64)
    filt = row[:, None] * row[None, :]
    return filt / filt.sum()


def _pads(filt_size: int) -> tuple[int, int]:
    """Padding before and after a spatial dim."""
    return (filt_size - 1) // 2, filt_size // 2


def blur_pool2d(
    x: torch.Tensor, filt_size: int = 3, stride: int = 2, pad_mode: str = "reflect"
) -> torch.Tensor:
    """Pad, blur each channel with the binomial filter, subsample by `stride`."""
    before, after = _pads(filt_size)
    c = x.shape[1]
    filt = binomial_filter(filt_size).to(device=x.device, dtype=x.dtype)
    padded = F.pad(x, (before, after, before, after), mode=_PAD_MODES[pad_mode])
    return F.conv2d(padded, filt.expand(c, 1, filt_size, filt_size), stride=stride, groups=c)


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [4], "NCHW")
    k, s = args["filt_size"], args["stride"]
    if not 2 <= k <= 7 or s < 1:
        raise ShapeMismatch(
            "blur_pool2d takes a binomial filter of size 2 to 7 and a positive stride",
            expected="filt_size in 2..7, stride >= 1",
            found=f"filt_size={k}, stride={s}",
        )
    n, c, h, w = x.shape
    if args["pad_mode"] == "reflect" and max(_pads(k)) >= min(h, w):
        raise ShapeMismatch(
            "reflect padding needs a map larger than the padding",
            expected=f"H and W above {max(_pads(k))}",
            found=str(x),
            input_index=0,
        )
    return x.with_shape((n, c, -(-h // s), -(-w // s)))


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    macs = out.numel * args["filt_size"] ** 2
    return Cost(macs=macs, flops=2 * macs)


def _lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(blur_pool2d, (xs[0],), explicit(args, BLUR_POOL2D.args))


BLUR_POOL2D = register_op(
    OpDef(
        name="blur_pool2d",
        doc="anti-aliased downsampling: pad, fixed binomial blur per channel, stride (Zhang 2019)",
        args={
            "filt_size": Arg(INT, 3, doc="binomial filter size, 2 to 7"),
            "stride": Arg(INT, 2),
            "pad_mode": Arg(STR, "reflect", choices=tuple(_PAD_MODES)),
        },
        infer=_infer,
        cost=_cost,
        lower=_lower,
        channels=PASS_NCHW,  # depthwise with a fixed filter: channel i stays channel i
    )
)
