"""Pyramid Vision Transformer v2 blocks (Wang et al. 2021) with timm's layout and names.

Inside a stage the tokens stay channels-last spatial, [N, H, W, C]: layernorm and linear act on
the last dim as they do on timm's [N, H*W, C] tokens, and the ops that need H and W (the
spatial-reduction attention, the MLP's depthwise conv) read them from the shape.

`overlap_patch_embed` is a strided conv with padding (`proj`, NCHW in) -> channels-last ->
`norm`; `pvt_block` is `norm1` -> `attn` (the `sr_attention` op) -> residual add, `norm2` ->
`mlp.fc1` -> depthwise 3x3 `mlp.dwconv` -> GELU -> `mlp.fc2` -> residual add; `pvt_stage` is an
optional `downsample` patch embedding, `blocks.0..depth-1`, a final `norm` and a move back to
NCHW. Node ids reproduce timm's module paths, so a timm pvt_v2 state_dict loads strictly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin
from archgraph.errors import SpecError

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value

LN_EPS = 1e-6  # timm's block and stage norms; patch embedding and attention norms keep 1e-5
TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


@builtin
def overlap_patch_embed(
    b: Builder, x: Value, *, dim: int, patch_size: int = 7, stride: int = 4
) -> Value:
    """Overlapping patch embedding: conv `proj` (padding patch_size // 2), channels-last, `norm`."""
    y = b.node(
        "conv2d",
        x,
        name="proj",
        out_channels=dim,
        kernel_size=patch_size,
        stride=stride,
        padding=patch_size // 2,
    )
    y = b.node("permute", y, name="to_nhwc", dims=TO_NHWC)
    return b.node("layernorm", y, name="norm", axis=-1)


def dwconv_mlp(b: Builder, x: Value, *, hidden: int) -> Value:
    """`mlp.fc1` -> depthwise 3x3 `mlp.dwconv` -> GELU -> `mlp.fc2` (timm's MlpWithDepthwiseConv)."""
    with b.scope("mlp"):
        y = b.node("linear", x, name="fc1", out_features=hidden)
        y = b.node("permute", y, name="to_nchw", dims=TO_NCHW)
        y = b.node(
            "conv2d", y, name="dwconv", out_channels=hidden, kernel_size=3, padding=1, groups=hidden
        )
        y = b.node("permute", y, name="to_nhwc", dims=TO_NHWC)
        y = b.node("gelu", y, name="act")
        return b.node("linear", y, name="fc2", out_features=x.shape[-1])


@builtin
def pvt_block(
    b: Builder,
    x: Value,
    *,
    num_heads: int,
    sr_ratio: int = 1,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
) -> Value:
    """PVT v2 block over [N, H, W, C]: spatial-reduction attention and a depthwise-conv MLP."""
    y = b.node("layernorm", x, name="norm1", axis=-1, eps=LN_EPS)
    y = b.node(
        "sr_attention", y, name="attn", num_heads=num_heads, sr_ratio=sr_ratio, qkv_bias=qkv_bias
    )
    x = b.node("add", x, y, name="add_attn")
    y = b.node("layernorm", x, name="norm2", axis=-1, eps=LN_EPS)
    y = dwconv_mlp(b, y, hidden=int(x.shape[-1] * mlp_ratio))
    return b.node("add", x, y, name="add_mlp")


@builtin
def pvt_stage(
    b: Builder,
    x: Value,
    *,
    dim: int,
    depth: int,
    num_heads: int,
    sr_ratio: int = 1,
    mlp_ratio: float = 4.0,
    downsample: bool = True,
    qkv_bias: bool = True,
) -> Value:
    """PVT v2 stage: NCHW in with `downsample` (a 3x3 stride-2 overlapping patch embedding),
    else [N, H, W, dim] from the stem; `depth` blocks, `norm`; NCHW out."""
    if downsample:
        x = b.block("overlap_patch_embed", x, name="downsample", dim=dim, patch_size=3, stride=2)
    elif x.type.rank != 4 or x.shape[-1] != dim:
        raise SpecError(
            "a pvt_stage without downsample takes channels-last tokens of its own width",
            expected=f"[N, H, W, {dim}]",
            found=str(x.type),
            hint="set downsample: true, or feed it the stem's overlap_patch_embed output",
        )
    for i in range(depth):
        x = b.block(
            "pvt_block",
            x,
            name=f"blocks.{i}",
            num_heads=num_heads,
            sr_ratio=sr_ratio,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
        )
    x = b.node("layernorm", x, name="norm", axis=-1, eps=LN_EPS)
    return b.node("permute", x, name="to_nchw", dims=TO_NCHW)
