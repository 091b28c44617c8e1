"""Swin Transformer blocks (Liu et al. 2021) with timm's layout and names.

Tokens stay channels-last spatial, [N, H, W, C], as in timm's SwinTransformer: layernorm and
linear act on the last dim, and the `window_attention` op reads H and W from the shape.

`swin_patch_embed` is a stride-p conv `proj` (no overlap, no padding) -> channels-last -> `norm`;
`patch_merging` concatenates each 2x2 neighbourhood's features (timm's order: x[0::2, 0::2],
x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]) -> `norm` -> `reduction` (linear, no bias), halving H
and W; `swin_block` is `norm1` -> `attn` ((shifted-)window attention) -> residual add, `norm2` ->
`mlp.fc1` -> GELU -> `mlp.fc2` -> residual add; `swin_stage` is an optional `downsample` (patch
merging) and `blocks.0..depth-1`, odd blocks shifted by half a window. Node ids reproduce timm's
module paths, so a timm Swin state_dict loads strictly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin
from archgraph.blocks.transformer import mlp
from archgraph.errors import SpecError

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value

LN_EPS = 1e-5  # timm's Swin uses nn.LayerNorm's default
TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


@builtin
def swin_patch_embed(b: Builder, x: Value, *, dim: int, patch_size: int = 4) -> Value:
    """Patch embedding: a patch_size-stride conv `proj`, channels-last, then `norm`."""
    y = b.node(
        "conv2d", x, name="proj", out_channels=dim, kernel_size=patch_size, stride=patch_size
    )
    y = b.node("permute", y, name="to_nhwc", dims=TO_NHWC)
    return b.node("layernorm", y, name="norm", eps=LN_EPS, axis=-1)


@builtin
def patch_merging(b: Builder, x: Value, *, out_dim: int | None = None) -> Value:
    """[N, H, W, C] -> [N, H/2, W/2, out_dim (default 2C)]: each 2x2 patch's 4C features,
    `norm`, `reduction` (timm's PatchMerging)."""
    if x.type.rank != 4 or x.shape[1] % 2 or x.shape[2] % 2:
        raise SpecError(
            "patch merging takes channels-last tokens with an even height and width",
            expected="[N, H, W, C] with H and W even",
            found=str(x.type),
            hint="choose an input size that halves evenly at every stage",
        )
    _, h, w, c = x.shape
    y = b.node("reshape", x, name="split", shape=[h // 2, 2, w // 2, 2, c])
    y = b.node("permute", y, name="gather", dims=[0, 1, 3, 4, 2, 5])
    y = b.node("flatten", y, name="merge", start_dim=3)
    y = b.node("layernorm", y, name="norm", eps=LN_EPS, axis=-1)
    return b.node("linear", y, name="reduction", out_features=out_dim or 2 * c, bias=False)


@builtin
def swin_block(
    b: Builder,
    x: Value,
    *,
    num_heads: int,
    window_size: int = 7,
    shift_size: int = 0,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
) -> Value:
    """Swin block over [N, H, W, C]: (shifted-)window attention and an MLP, pre-norm residuals.

    As timm does, a map no larger than the window is one window, unshifted."""
    _, h, w, _ = x.shape
    window = [min(h, window_size), min(w, window_size)]
    shift = [0 if h <= window_size else shift_size, 0 if w <= window_size else shift_size]
    y = b.node("layernorm", x, name="norm1", eps=LN_EPS, axis=-1)
    y = b.node(
        "window_attention",
        y,
        name="attn",
        num_heads=num_heads,
        window_size=window,
        shift_size=shift,
        qkv_bias=qkv_bias,
    )
    x = b.node("add", x, y, name="add_attn")
    y = b.node("layernorm", x, name="norm2", eps=LN_EPS, axis=-1)
    y = mlp(b, y, hidden=int(x.shape[-1] * mlp_ratio))
    return b.node("add", x, y, name="add_mlp")


@builtin
def swin_stage(
    b: Builder,
    x: Value,
    *,
    dim: int,
    depth: int,
    num_heads: int,
    window_size: int = 7,
    mlp_ratio: float = 4.0,
    downsample: bool = True,
    qkv_bias: bool = True,
) -> Value:
    """Swin stage over [N, H, W, C]: `downsample` (patch merging to `dim`) when asked, then
    `depth` blocks alternating W-MSA and SW-MSA (shift window_size // 2)."""
    if downsample:
        x = b.block("patch_merging", x, name="downsample", out_dim=dim)
    elif x.type.rank != 4 or x.shape[-1] != dim:
        raise SpecError(
            "a swin_stage without downsample takes channels-last tokens of its own width",
            expected=f"[N, H, W, {dim}]",
            found=str(x.type),
            hint="set downsample: true, or feed it the swin_patch_embed output",
        )
    for i in range(depth):
        x = b.block(
            "swin_block",
            x,
            name=f"blocks.{i}",
            num_heads=num_heads,
            window_size=window_size,
            shift_size=0 if i % 2 == 0 else window_size // 2,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
        )
    return x
