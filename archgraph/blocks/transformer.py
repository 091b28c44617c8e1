"""Vision Transformer blocks (Dosovitskiy et al. 2021) with timm's layout and names.

`patch_embed` cuts the image into non-overlapping patches with a stride-p conv (`proj`) and
flattens them into tokens [N, L, D]; `vit_block` is the pre-norm encoder block: `norm1` ->
`attn` (the `mhsa` op: `qkv`, `proj`) -> residual add, `norm2` -> `mlp.fc1` -> GELU ->
`mlp.fc2` -> residual add. Node ids reproduce timm's module paths, so a timm ViT state_dict
loads strictly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value

LN_EPS = 1e-6  # timm's transformers use eps 1e-6, not PyTorch's default 1e-5


def mlp(b: Builder, x: Value, *, hidden: int) -> Value:
    """`mlp.fc1` -> GELU -> `mlp.fc2`, back to the input width (timm's Mlp)."""
    with b.scope("mlp"):
        y = b.node("linear", x, name="fc1", out_features=hidden)
        y = b.node("gelu", y, name="act")
        return b.node("linear", y, name="fc2", out_features=x.shape[-1])


@builtin
def patch_embed(b: Builder, x: Value, *, dim: int, patch_size: int = 16) -> Value:
    """ViT patch embedding: a patch_size-stride conv `proj`, flattened to tokens [N, L, dim]."""
    y = b.node(
        "conv2d", x, name="proj", out_channels=dim, kernel_size=patch_size, stride=patch_size
    )
    y = b.node("flatten", y, name="flatten", start_dim=2)
    return b.node("transpose", y, name="to_tokens", dim0=1, dim1=2)


@builtin
def vit_block(
    b: Builder,
    x: Value,
    *,
    num_heads: int,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
    eps: float = LN_EPS,
) -> Value:
    """Pre-norm transformer encoder block over tokens [N, L, D] (timm's ViT Block)."""
    y = b.node("layernorm", x, name="norm1", eps=eps)
    y = b.node("mhsa", y, name="attn", num_heads=num_heads, qkv_bias=qkv_bias)
    x = b.node("add", x, y, name="add_attn")
    y = b.node("layernorm", x, name="norm2", eps=eps)
    y = mlp(b, y, hidden=int(x.shape[-1] * mlp_ratio))
    return b.node("add", x, y, name="add_mlp")
