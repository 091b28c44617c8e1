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
    Cost,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    need_rank,
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
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias, device=device)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim, bias=proj_bias, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        qkv = (
            self.qkv(x).reshape(n, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        )
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(n, length, dim)
        return self.proj(out)


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [3], "tokens [N, L, D]")
    h = args["num_heads"]
    if h < 1 or x.shape[2] % h:
        raise ShapeMismatch(
            f"embedding dim must divide into num_heads={h}",
            expected=f"a last dim divisible by {h}",
            found=str(x),
            input_index=0,
        )
    return x


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    d = ins[0].shape[2]
    specs = {"qkv.weight": ParamSpec((3 * d, d), "kaiming_uniform", fan_in=d)}
    if args["qkv_bias"]:
        specs["qkv.bias"] = ParamSpec((3 * d,), "fan_in_uniform", fan_in=d)
    specs["proj.weight"] = ParamSpec((d, d), "kaiming_uniform", fan_in=d)
    if args["proj_bias"]:
        specs["proj.bias"] = ParamSpec((d,), "fan_in_uniform", fan_in=d)
    return specs


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    n, length, d = ins[0].shape
    projections = n * length * d * 3 * d + n * length * d * d
    attention = 2 * n * length * length * d  # q k^T and attn v, summed over heads
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
        },
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
    )
)
