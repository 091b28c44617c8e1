"""WideNet's transformer block (Xue et al. 2022, "Go Wider Instead of Deeper"): a pre-norm ViT
block whose MLP is a mixture of experts (the `moe_mlp` op), with the attention and the MoE layer
shared across depth while every depth keeps its own LayerNorms.

`widenet_block(share_from=<scope>)` names the block whose `attn` and `moe` every other block
uses (`share:` on those two nodes, archgraph.ir.sharing); the block at that scope owns them. In
a spec: `blocks: {block: widenet_block, repeat: 12, share_from: blocks.0, ...}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin
from archgraph.blocks.transformer import LN_EPS

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


def _shared(b: Builder, share_from: str | None, name: str) -> str | None:
    """The id to share `name`'s parameters with, or None where this block owns them."""
    if share_from is None:
        return None
    target = f"{share_from}.{name}"
    return None if target == b.qualify(name) else target


@builtin
def widenet_block(
    b: Builder,
    x: Value,
    *,
    num_heads: int,
    num_experts: int,
    mlp_ratio: float = 4.0,
    top_k: int = 2,
    capacity_factor: float = 1.25,
    qkv_bias: bool = True,
    eps: float = LN_EPS,
    share_from: str | None = None,
) -> Value:
    """Pre-norm block over tokens [N, L, D]: attention and a MoE MLP, shared with `share_from`."""
    y = b.node("layernorm", x, name="norm1", eps=eps)
    y = b.node(
        "mhsa",
        y,
        name="attn",
        share=_shared(b, share_from, "attn"),
        num_heads=num_heads,
        qkv_bias=qkv_bias,
    )
    x = b.node("add", x, y, name="add_attn")
    y = b.node("layernorm", x, name="norm2", eps=eps)
    y = b.node(
        "moe_mlp",
        y,
        name="moe",
        share=_shared(b, share_from, "moe"),
        num_experts=num_experts,
        hidden=int(x.shape[-1] * mlp_ratio),
        top_k=top_k,
        capacity_factor=capacity_factor,
    )
    return b.node("add", x, y, name="add_moe")
