"""inverted_window_attention: the window attention of EMO's inverted residual mobile block (iRMB,
Zhang et al. 2023, "Rethinking Mobile Block for Efficient Attention-based Models"; kept by EMOv2's
i2RMB, Zhang et al. 2024), over NCHW maps.

Two inputs: the block's (normalized) input x [N, C, H, W], from which a 1x1 conv `qk` makes the
queries and keys (C channels each), and the expanded features v [N, E, H, W] (the inverted
residual's expansion, E = lambda * C), which are the values. Per non-overlapping window and head,

    out = SoftMax(Q K^T / sqrt(C / heads)) V     (E / heads value channels per head)

so the attention mixes the expanded features spatially before the depthwise conv, and the output
has v's shape. No output projection: the block's `proj` conv follows the depthwise conv.

With `span` (EMOv2's spanning window attention, its EW-MHSA "hybrid"), the same q, k and v also
attend over *remote* windows, each made of the tokens H / Wh rows and W / Ww columns apart (a
dilated grid spanning the whole map), and the close-window and remote-window outputs are summed:
local and global context for the parameters of one window attention.

A map that is not whole windows is padded as EMOv2 pads it: zeros after its last row and column
up to a multiple of the window (both inputs; q and k come from the padded x, so a qk bias shows
at the padded tokens as in EMOv2), attention over the padded map (padded tokens are keys too),
then the output cropped back to H x W. EMOv2 computes v from the padded x; zero-padding v is the
same when v's producer maps 0 to 0 (i2RMB's bias-free 1x1 conv and SiLU do). The cost rule
counts the padded map.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    BOOL,
    INT,
    PAIR,
    Arg,
    Cost,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    register_op,
)


def _partition(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """[N, C, H, W] -> [N * nW, C, Wh * Ww], windows row-major over the grid."""
    n, c, h, w = x.shape
    wh, ww = window
    x = x.view(n, c, h // wh, wh, w // ww, ww).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(-1, c, wh * ww)


def _reverse(x: torch.Tensor, window: tuple[int, int], h: int, w: int) -> torch.Tensor:
    """[N * nW, C, Wh * Ww] -> [N, C, H, W] (the inverse of _partition)."""
    wh, ww = window
    c = x.shape[1]
    x = x.view(-1, h // wh, w // ww, c, wh, ww).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(-1, c, h, w)


def _partition_remote(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """[N, C, H, W] -> [N * nW, C, Wh * Ww], each window the tokens H / Wh rows and W / Ww
    columns apart (EMOv2's remote windows)."""
    n, c, h, w = x.shape
    wh, ww = window
    x = x.view(n, c, wh, h // wh, ww, w // ww).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(-1, c, wh * ww)


def _reverse_remote(x: torch.Tensor, window: tuple[int, int], h: int, w: int) -> torch.Tensor:
    """The inverse of _partition_remote."""
    wh, ww = window
    c = x.shape[1]
    x = x.view(-1, h // wh, w // ww, c, wh, ww).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(-1, c, h, w)


def _padding(h: int, w: int, window: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of zeros that make an H x W map whole windows."""
    return -h % window[0], -w % window[1]


class InvertedWindowAttention(nn.Module):
    """Queries and keys from x by a 1x1 conv, values from v; attention inside each window."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window: tuple[int, int],
        qk_bias: bool,
        span: bool,
        device: Any = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        self.span = span
        self.scale = (dim // num_heads) ** -0.5
        self.qk = nn.Conv2d(dim, 2 * dim, 1, bias=qk_bias, device=device)

    def forward(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_b, pad_r = _padding(h, w, self.window)
        if pad_b or pad_r:  # EMOv2: zeros after the last row and column, cropped after
            x, v = F.pad(x, (0, pad_r, 0, pad_b)), F.pad(v, (0, pad_r, 0, pad_b))
        qk = self.qk(x)
        out = self.windowed(qk, v, _partition, _reverse)
        if self.span:
            out = out + self.windowed(qk, v, _partition_remote, _reverse_remote)
        return out[:, :, :h, :w] if pad_b or pad_r else out

    def windowed(self, qk: torch.Tensor, v: torch.Tensor, split: Any, merge: Any) -> torch.Tensor:
        """Attention inside the windows `split` makes; `merge` puts them back."""
        _, c2, h, w = qk.shape
        heads = self.num_heads
        qk = split(qk, self.window)  # [B, 2C, L]
        b, _, length = qk.shape
        qk = qk.view(b, 2, heads, c2 // (2 * heads), length).permute(1, 0, 2, 4, 3)
        values = split(v, self.window).view(b, heads, -1, length).transpose(-2, -1)
        out = self.attend(qk[0], qk[1], values)  # B, heads, L, E/heads
        return merge(out.transpose(-2, -1).reshape(b, -1, length), self.window, h, w)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """SoftMax(q k^T * scale) v per window and head."""
        return ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1) @ v


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x, v = ins
    heads, (wh, ww) = args["num_heads"], args["window_size"]
    if x.rank != 4 or v.rank != 4 or x.shape[2:] != v.shape[2:] or x.shape[0] != v.shape[0]:
        raise ShapeMismatch(
            "inverted_window_attention takes two NCHW maps of one batch and size",
            expected=f"x [N, C, H, W] and v [N, E, H, W] sized like {x}",
            found=f"{x}, {v}",
            input_index=1,
        )
    if heads < 1 or x.shape[1] % heads or v.shape[1] % heads:
        raise ShapeMismatch(
            f"the channels of x and v must divide into num_heads={heads}",
            expected=f"C and E divisible by {heads}",
            found=f"C={x.shape[1]}, E={v.shape[1]}",
        )
    if wh < 1 or ww < 1:
        raise ShapeMismatch(
            "the window must be at least one token",
            expected="window_size >= 1",
            found=f"{wh}x{ww}",
        )
    return v


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    c = ins[0].shape[1]
    specs = {"qk.weight": ParamSpec((2 * c, c, 1, 1), "kaiming_uniform", fan_in=c)}
    if args["qk_bias"]:
        specs["qk.bias"] = ParamSpec((2 * c,), "fan_in_uniform", fan_in=c)
    return specs


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    """The qk conv over every token; q k^T (C per pair) and attn v (E per pair) in each window;
    all over the map padded to whole windows."""
    n, c, h, w = ins[0].shape
    e = ins[1].shape[1]
    wh, ww = args["window_size"]
    pad_b, pad_r = _padding(h, w, (wh, ww))
    h, w = h + pad_b, w + pad_r
    length, windows = wh * ww, n * (h // wh) * (w // ww)
    maps = 2 if args["span"] else 1  # close and remote windows
    macs = n * h * w * c * 2 * c + maps * windows * length * length * (c + e)
    scores = maps * windows * args["num_heads"] * length * length
    summed = n * h * w * e if args["span"] else 0
    qk_bias = n * h * w * 2 * c if args["qk_bias"] else 0
    pointwise = qk_bias + maps * n * h * w * c + 5 * scores + summed
    return Cost(macs=macs, flops=2 * macs + pointwise)


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return InvertedWindowAttention(
        ins[0].shape[1],
        args["num_heads"],
        args["window_size"],
        args["qk_bias"],
        args["span"],
        device="meta",
    )


INVERTED_WINDOW_ATTENTION = register_op(
    OpDef(
        name="inverted_window_attention",
        doc="window attention with queries/keys from x and values from expanded v (EMO's iRMB)",
        args={
            "num_heads": Arg(INT),
            "window_size": Arg(PAIR, 7, doc="window height and width (tokens)"),
            "qk_bias": Arg(BOOL, True),
            "span": Arg(BOOL, False, doc="also attend over remote (dilated) windows (EMOv2)"),
        },
        arity=(2, 2),
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
        sdpa_form="inverted_window_attention_sdpa",  # archgraph.ops.fused_attention
        # channels=None: the heads group both inputs' channels, and x's channels feed q and k of
        # every head, so pruning keeps this op's channels (it blocks them, by node)
    )
)
