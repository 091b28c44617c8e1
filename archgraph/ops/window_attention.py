"""window_attention: Swin's (shifted-)window multi-head self-attention with relative position bias
(Liu et al. 2021, "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows"),
laid out like timm's WindowAttention (`relative_position_bias_table`, `qkv`, `proj`; the
`relative_position_index` and the shifted-window mask are non-persistent buffers, as in timm), so
Swin state_dicts load as they are.

The input is channels-last spatial tokens [N, H, W, C]. The op does what timm's
SwinTransformerBlock._attn does around its attention:

1. cyclic shift: roll the map by (-shift_h, -shift_w) over H and W (shift 0: W-MSA, else SW-MSA);
2. pad H, W up to multiples of the window (zeros at the bottom and right);
3. window partition: [N, Hp, Wp, C] -> [N * nW, Wh * Ww, C], nW = (Hp / Wh) * (Wp / Ww);
4. per window and head, Attention(Q, K, V) = SoftMax(Q K^T / sqrt(d) + B + M) V (paper eq. 4),
   B[i, j] = relative_position_bias_table[relative_position_index[i, j]] (a (2Wh-1)(2Ww-1) x
   heads table indexed by the offset between the two tokens of a window), M the shifted-window
   mask: 0 between tokens from the same region of the unshifted map, -100 between tokens the
   roll brought together (timm's value), added only when shifting;
5. the output projection, window reverse, the padding cropped, and the shift rolled back.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    BOOL,
    FLOAT,
    INT,
    PAIR,
    Arg,
    ChannelRule,
    Cost,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    need_rank,
    optional,
    register_op,
)

MASK_VALUE = -100.0  # timm's (and the paper code's) fill for token pairs from different regions


def window_partition(x: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """[N, H, W, C] -> [N * nW, Wh, Ww, C]: non-overlapping windows, row-major over the grid."""
    n, h, w, c = x.shape
    wh, ww = window
    x = x.view(n, h // wh, wh, w // ww, ww, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, wh, ww, c)


def window_reverse(windows: torch.Tensor, window: tuple[int, int], h: int, w: int) -> torch.Tensor:
    """The inverse of window_partition: [N * nW, Wh, Ww, C] -> [N, H, W, C]."""
    wh, ww = window
    c = windows.shape[-1]
    x = windows.view(-1, h // wh, w // ww, wh, ww, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def relative_position_index(wh: int, ww: int) -> torch.Tensor:
    """[Wh*Ww, Wh*Ww] index into the bias table: the offset (dy, dx) between two tokens of a
    window, shifted to start at 0 and flattened row-major, (dy + Wh - 1) * (2Ww - 1) + dx + Ww - 1."""
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij"))
    flat = coords.flatten(1)  # 2, Wh*Ww
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0)  # Wh*Ww, Wh*Ww, 2
    return (rel[..., 0] + wh - 1) * (2 * ww - 1) + rel[..., 1] + ww - 1


def shifted_window_mask(
    hp: int, wp: int, window: tuple[int, int], shift: tuple[int, int]
) -> torch.Tensor:
    """[nW, Wh*Ww, Wh*Ww]: 0 where two tokens of a window come from the same region of the
    unshifted (padded) map, MASK_VALUE where the cyclic shift brought them together."""
    region = torch.zeros(1, hp, wp, 1)
    label = 0
    for hs in ((0, -window[0]), (-window[0], -shift[0]), (-shift[0], None)):
        for ws in ((0, -window[1]), (-window[1], -shift[1]), (-shift[1], None)):
            region[:, hs[0] : hs[1], ws[0] : ws[1], :] = label
            label += 1
    labels = window_partition(region, window).reshape(-1, window[0] * window[1])
    diff = labels.unsqueeze(1) - labels.unsqueeze(2)
    return torch.where(diff != 0, MASK_VALUE, 0.0)


def _padded(size: int, window: int) -> int:
    return -(-size // window) * window


class WindowAttention(nn.Module):
    """(Shifted-)window attention over [N, H, W, C] (see the module docstring)."""

    def __init__(
        self,
        dim: int,
        size: tuple[int, int],
        num_heads: int,
        window: tuple[int, int],
        shift: tuple[int, int],
        qkv_bias: bool,
        attn_drop: float,
        device: Any = None,
        head_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim or dim // num_heads
        self.scale = self.head_dim**-0.5
        self.window = window
        self.shift = shift
        wh, ww = window
        inner = num_heads * self.head_dim
        # registration order = timm's state_dict order
        self.relative_position_bias_table = nn.Parameter(
            torch.empty((2 * wh - 1) * (2 * ww - 1), num_heads, device=device)
        )
        # constants derived from the arguments, computed here (never on the meta device)
        self.register_buffer(
            "relative_position_index", relative_position_index(wh, ww), persistent=False
        )
        mask = None
        if any(shift):
            mask = shifted_window_mask(_padded(size[0], wh), _padded(size[1], ww), window, shift)
        self.register_buffer("attn_mask", mask, persistent=False)
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias, device=device)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(inner, dim, device=device)

    def position_bias(self) -> torch.Tensor:
        """B: [1, heads, Wh*Ww, Wh*Ww] gathered from the table."""
        area = self.window[0] * self.window[1]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(area, area, -1).permute(2, 0, 1).unsqueeze(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        (wh, ww), (sh, sw) = self.window, self.shift
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        hp, wp = _padded(h, wh), _padded(w, ww)
        if hp != h or wp != w:
            x = nn.functional.pad(x, (0, 0, 0, wp - w, 0, hp - h))
        windows = window_partition(x, self.window).reshape(-1, wh * ww, c)
        b, length, _ = windows.shape
        qkv = self.qkv(windows).reshape(b, length, 3, self.num_heads, self.head_dim)
        out = self.attend(*qkv.permute(2, 0, 3, 1, 4).unbind(0))
        out = self.proj(out.transpose(1, 2).reshape(b, length, self.num_heads * self.head_dim))
        x = window_reverse(out.view(-1, wh, ww, c), self.window, hp, wp)[:, :h, :w, :]
        if sh or sw:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        return x.contiguous()

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """SoftMax(q k^T * scale + B + M) v per window and head: [N*nW, heads, L, head_dim]."""
        attn = (q * self.scale) @ k.transpose(-2, -1) + self.position_bias()
        if self.attn_mask is not None:
            nw, length = self.attn_mask.shape[0], attn.shape[-1]
            attn = attn.view(-1, nw, self.num_heads, length, length) + self.attn_mask[None, :, None]
            attn = attn.view(-1, self.num_heads, length, length)
        return self.attn_drop(attn.softmax(dim=-1)) @ v

    def attention_bias(self, windows: int) -> torch.Tensor:
        """B + M as one additive mask for `windows` windows: [N*nW, heads, L, L] (or B alone)."""
        bias = self.position_bias()
        if self.attn_mask is None:
            return bias
        nw, length = self.attn_mask.shape[0], bias.shape[-1]
        full = bias.unsqueeze(1) + self.attn_mask[None, :, None]  # 1, nW, heads, L, L
        return full.expand(windows // nw, -1, -1, -1, -1).reshape(
            -1, self.num_heads, length, length
        )


def _windows(args: dict[str, Any], x: TensorType) -> tuple[int, int, int, int]:
    """(padded H, padded W, windows per sample, tokens per window)."""
    _, h, w, _ = x.shape
    wh, ww = args["window_size"]
    hp, wp = _padded(h, wh), _padded(w, ww)
    return hp, wp, (hp // wh) * (wp // ww), wh * ww


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [4], "channels-last spatial tokens [N, H, W, C]")
    _, h, w, c = x.shape
    heads, head_dim = args["num_heads"], args["head_dim"]
    (wh, ww), (sh, sw) = args["window_size"], args["shift_size"]
    if heads < 1 or (head_dim is not None and head_dim < 1):
        raise ShapeMismatch(
            "num_heads and head_dim must be positive",
            expected=">= 1",
            found=f"num_heads={heads}, head_dim={head_dim}",
        )
    if head_dim is None and c % heads:
        raise ShapeMismatch(
            f"channels (last dim) must divide into num_heads={heads}",
            expected=f"a last dim divisible by {heads}",
            found=str(x),
            input_index=0,
        )
    if wh < 1 or ww < 1 or not (0 <= sh < wh and 0 <= sw < ww):
        raise ShapeMismatch(
            "window_size must be positive and each shift_size in [0, window)",
            expected="window_size >= 1, 0 <= shift_size < window_size",
            found=f"window_size={[wh, ww]}, shift_size={[sh, sw]}",
        )
    if wh > h or ww > w:
        raise ShapeMismatch(
            f"window {wh}x{ww} is larger than the map",
            expected=f"window_size of at most H={h}, W={w} (timm's block uses the map size)",
            found=f"window_size={[wh, ww]} on {x}",
            input_index=0,
        )
    if (sh and h <= wh) or (sw and w <= ww):
        raise ShapeMismatch(
            f"a shifted window needs a map larger than the window ({wh}x{ww})",
            expected=f"H > {wh} and W > {ww} when shifting (timm sets shift 0 otherwise)",
            found=f"{x} (H={h}, W={w}) with shift_size={[sh, sw]}",
            input_index=0,
        )
    return x


def _inner(args: dict[str, Any], c: int) -> int:
    """num_heads * head_dim: the model width unless head_dim is given (heads pruned)."""
    return c if args["head_dim"] is None else args["num_heads"] * args["head_dim"]


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    c = ins[0].shape[3]
    i = _inner(args, c)
    wh, ww = args["window_size"]
    specs = {
        "relative_position_bias_table": ParamSpec(
            ((2 * wh - 1) * (2 * ww - 1), args["num_heads"]), "trunc_normal"
        ),
        "qkv.weight": ParamSpec((3 * i, c), "kaiming_uniform", fan_in=c),
    }
    if args["qkv_bias"]:
        specs["qkv.bias"] = ParamSpec((3 * i,), "fan_in_uniform", fan_in=c)
    specs["proj.weight"] = ParamSpec((c, i), "kaiming_uniform", fan_in=i)
    specs["proj.bias"] = ParamSpec((c,), "fan_in_uniform", fan_in=i)
    return specs


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    """Projections over every (padded) token, and q k^T and attn v inside each window."""
    n, _, _, c = ins[0].shape
    i = _inner(args, c)
    hp, wp, nw, length = _windows(args, ins[0])
    tokens = n * hp * wp
    projections = tokens * c * 3 * i + tokens * i * c  # qkv, proj
    attention = 2 * n * nw * length * length * i  # summed over heads
    macs = projections + attention
    scores = n * nw * args["num_heads"] * length * length
    biases = tokens * (c + (3 * i if args["qkv_bias"] else 0))
    masked = scores if any(args["shift_size"]) else 0
    # q scale, + B, + M, softmax (5 per score: max, sub, exp, sum, div)
    pointwise = tokens * i + scores + masked + 5 * scores
    return Cost(macs=macs, flops=2 * macs + biases + pointwise)


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    _, h, w, c = ins[0].shape
    return WindowAttention(
        c,
        (h, w),
        args["num_heads"],
        args["window_size"],
        args["shift_size"],
        args["qkv_bias"],
        args["attn_drop"],
        device="meta",
        head_dim=args["head_dim"],
    )


def _channels(args: dict[str, Any], ins: list[TensorType]) -> ChannelRule:
    """Model channels pass through (qkv reads them, proj writes them); whole heads can go inside
    the op: their q, k, v rows, proj columns and their column of the bias table."""
    head_dim = args["head_dim"] or ins[0].shape[3] // args["num_heads"]
    return ChannelRule(
        "heads",
        axis=-1,
        out_params={"proj.weight": 0, "proj.bias": 0},
        in_params={"qkv.weight": 1},
        head_params={
            "qkv.weight": (0, 3),
            "qkv.bias": (0, 3),
            "proj.weight": (1, 1),
            "relative_position_bias_table": (1, 1),
        },
        resize=lambda a, n: {**a, "num_heads": n, "head_dim": head_dim},
    )


WINDOW_ATTENTION = register_op(
    OpDef(
        name="window_attention",
        doc="Swin (shifted-)window multi-head attention with relative position bias over [N, H, W, C]",
        args={
            "num_heads": Arg(INT),
            "window_size": Arg(PAIR, 7, doc="window height and width (tokens)"),
            "shift_size": Arg(PAIR, 0, doc="cyclic shift before partitioning; 0: no shift"),
            "qkv_bias": Arg(BOOL, True),
            "attn_drop": Arg(FLOAT, 0.0),
            "head_dim": Arg(
                optional(INT), None, doc="per-head width; default C // num_heads (pruned heads)"
            ),
        },
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
        sdpa_form="window_attention_sdpa",  # archgraph.ops.fused_attention
        channels=_channels,
    )
)
