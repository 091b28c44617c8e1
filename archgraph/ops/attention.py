"""mhsa: multi-head self-attention over tokens [N, L, D], laid out like timm's Attention
(a fused `qkv` projection and an output `proj`), so ViT-style state_dicts load as they are."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    BOOL,
    FLOAT,
    INT,
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


class MultiHeadSelfAttention(nn.Module):
    """softmax(q k^T / sqrt(d_head)) v per head, then an output projection."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool,
        proj_bias: bool,
        attn_drop: float,
        device: Any = None,
        head_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim or dim // num_heads
        self.scale = self.head_dim**-0.5
        inner = num_heads * self.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=qkv_bias, device=device)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(inner, dim, bias=proj_bias, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        qkv = (
            self.qkv(x).reshape(n, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        )
        out = self.attend(*qkv.unbind(0))
        return self.proj(out.transpose(1, 2).reshape(n, length, self.num_heads * self.head_dim))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T * scale) v per head: [N, heads, L, head_dim] in and out."""
        attn = (q * self.scale) @ k.transpose(-2, -1)
        return self.attn_drop(attn.softmax(dim=-1)) @ v


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [3], "tokens [N, L, D]")
    h = args["num_heads"]
    if args["head_dim"] is not None:
        if h < 1 or args["head_dim"] < 1:
            raise ShapeMismatch(
                "num_heads and head_dim must be positive",
                expected=">= 1",
                found=f"num_heads={h}, head_dim={args['head_dim']}",
            )
        return x
    if h < 1 or x.shape[2] % h:
        raise ShapeMismatch(
            f"embedding dim must divide into num_heads={h}",
            expected=f"a last dim divisible by {h}",
            found=str(x),
            input_index=0,
        )
    return x


def _inner(args: dict[str, Any], d: int) -> int:
    """num_heads * head_dim: the model width unless head_dim is given (heads pruned)."""
    return d if args["head_dim"] is None else args["num_heads"] * args["head_dim"]


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    d = ins[0].shape[2]
    i = _inner(args, d)
    specs = {"qkv.weight": ParamSpec((3 * i, d), "kaiming_uniform", fan_in=d)}
    if args["qkv_bias"]:
        specs["qkv.bias"] = ParamSpec((3 * i,), "fan_in_uniform", fan_in=d)
    specs["proj.weight"] = ParamSpec((d, i), "kaiming_uniform", fan_in=i)
    if args["proj_bias"]:
        specs["proj.bias"] = ParamSpec((d,), "fan_in_uniform", fan_in=i)
    return specs


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    n, length, d = ins[0].shape
    i = _inner(args, d)
    projections = n * length * d * 3 * i + n * length * i * d
    attention = 2 * n * length * length * i  # q k^T and attn v, summed over heads
    macs = projections + attention
    softmax = 5 * n * args["num_heads"] * length * length
    return Cost(macs=macs, flops=2 * macs + softmax)


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return MultiHeadSelfAttention(
        ins[0].shape[2],
        args["num_heads"],
        args["qkv_bias"],
        args["proj_bias"],
        args["attn_drop"],
        device="meta",
        head_dim=args["head_dim"],
    )


def _channels(args: dict[str, Any], ins: list[TensorType]) -> ChannelRule:
    """Model channels pass through (qkv reads them, proj writes them); whole heads (their q, k,
    v rows and proj columns) can go inside the op."""
    head_dim = args["head_dim"] or ins[0].shape[2] // args["num_heads"]
    return ChannelRule(
        "heads",
        axis=-1,
        out_params={"proj.weight": 0, "proj.bias": 0},
        in_params={"qkv.weight": 1},
        head_params={"qkv.weight": (0, 3), "qkv.bias": (0, 3), "proj.weight": (1, 1)},
        resize=lambda a, n: {**a, "num_heads": n, "head_dim": head_dim},
    )


MHSA = register_op(
    OpDef(
        name="mhsa",
        doc="multi-head self-attention over tokens [N, L, D] (qkv and proj projections)",
        args={
            "num_heads": Arg(INT),
            "qkv_bias": Arg(BOOL, True),
            "proj_bias": Arg(BOOL, True),
            "attn_drop": Arg(FLOAT, 0.0),
            "head_dim": Arg(
                optional(INT), None, doc="per-head width; default dim // num_heads (pruned heads)"
            ),
        },
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
        channels=_channels,
        sdpa_form="mhsa_sdpa",  # archgraph.ops.fused_attention
    )
)
