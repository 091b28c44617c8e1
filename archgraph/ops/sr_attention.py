"""sr_attention: spatial-reduction multi-head attention (PVT v2, Wang et al. 2021), laid out like
timm's pvt_v2 Attention (`q`, `kv`, `proj`, and with sr_ratio > 1 the reducing conv `sr` and its
`norm`), so PVT v2 state_dicts load as they are.

The input is channels-last spatial tokens [N, H, W, C]: the op reads H and W from the shape (the
reducing conv needs them) instead of taking them as arguments that could disagree with the
tokens. Queries come from all H*W tokens; keys and values from the tokens reduced by a strided
sr_ratio x sr_ratio conv and a layernorm, so attention costs H*W x (H/r)*(W/r) instead of
(H*W)^2.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.conv import window_out
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


class SpatialReductionAttention(nn.Module):
    """softmax(q k^T / sqrt(d_head)) v per head over reduced keys/values, then a projection."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        sr_ratio: int,
        qkv_bias: bool,
        norm_eps: float,
        attn_drop: float,
        device: Any = None,
        head_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim or dim // num_heads
        self.scale = self.head_dim**-0.5
        inner = num_heads * self.head_dim
        self.q = nn.Linear(dim, inner, bias=qkv_bias, device=device)
        self.kv = nn.Linear(dim, 2 * inner, bias=qkv_bias, device=device)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(inner, dim, device=device)
        self.sr: nn.Conv2d | None = None
        self.norm: nn.LayerNorm | None = None
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio, device=device)
            self.norm = nn.LayerNorm(dim, eps=norm_eps, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape
        tokens = x.reshape(n, h * w, c)
        q = self.q(tokens).reshape(n, h * w, self.num_heads, self.head_dim).transpose(1, 2)
        if self.sr is not None and self.norm is not None:
            reduced = self.sr(x.permute(0, 3, 1, 2)).flatten(2).transpose(1, 2)
            tokens = self.norm(reduced)
        kv = self.kv(tokens).reshape(n, -1, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = self.attend(q, *kv.unbind(0))
        return self.proj(out.transpose(1, 2).reshape(n, h, w, self.num_heads * self.head_dim))

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T * scale) v per head: [N, heads, tokens, head_dim] out."""
        attn = (q * self.scale) @ k.transpose(-2, -1)
        return self.attn_drop(attn.softmax(dim=-1)) @ v


def _reduced_tokens(args: dict[str, Any], x: TensorType) -> int:
    """How many key/value tokens the reducing conv leaves (all of them without reduction)."""
    _, h, w, _ = x.shape
    r = args["sr_ratio"]
    return h * w if r == 1 else window_out(h, r, r, 0) * window_out(w, r, r, 0)


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [4], "channels-last spatial tokens [N, H, W, C]")
    _, h, w, c = x.shape
    heads, r = args["num_heads"], args["sr_ratio"]
    if args["head_dim"] is not None and (heads < 1 or args["head_dim"] < 1):
        raise ShapeMismatch(
            "num_heads and head_dim must be positive",
            expected=">= 1",
            found=f"num_heads={heads}, head_dim={args['head_dim']}",
        )
    if args["head_dim"] is None and (heads < 1 or c % heads):
        raise ShapeMismatch(
            f"channels (last dim) must divide into num_heads={heads}",
            expected=f"a last dim divisible by {heads}",
            found=str(x),
            input_index=0,
        )
    if r < 1 or h < r or w < r:
        raise ShapeMismatch(
            f"sr_ratio={r} does not fit the spatial size",
            expected=f"a positive sr_ratio and H, W of at least {max(r, 1)}",
            found=f"sr_ratio={r} on {x} (H={h}, W={w})",
            input_index=0,
        )
    return x


def _inner(args: dict[str, Any], c: int) -> int:
    """num_heads * head_dim: the model width unless head_dim is given (heads pruned)."""
    return c if args["head_dim"] is None else args["num_heads"] * args["head_dim"]


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    c = ins[0].shape[3]
    i = _inner(args, c)
    bias = args["qkv_bias"]
    specs = {"q.weight": ParamSpec((i, c), "kaiming_uniform", fan_in=c)}
    if bias:
        specs["q.bias"] = ParamSpec((i,), "fan_in_uniform", fan_in=c)
    specs["kv.weight"] = ParamSpec((2 * i, c), "kaiming_uniform", fan_in=c)
    if bias:
        specs["kv.bias"] = ParamSpec((2 * i,), "fan_in_uniform", fan_in=c)
    specs["proj.weight"] = ParamSpec((c, i), "kaiming_uniform", fan_in=i)
    specs["proj.bias"] = ParamSpec((c,), "fan_in_uniform", fan_in=i)
    r = args["sr_ratio"]
    if r > 1:
        fan_in = c * r * r
        specs["sr.weight"] = ParamSpec((c, c, r, r), "kaiming_uniform", fan_in=fan_in)
        specs["sr.bias"] = ParamSpec((c,), "fan_in_uniform", fan_in=fan_in)
        specs["norm.weight"] = ParamSpec((c,), "ones")
        specs["norm.bias"] = ParamSpec((c,), "zeros")
    return specs


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    n, h, w, c = ins[0].shape
    i = _inner(args, c)
    length, reduced = h * w, _reduced_tokens(args, ins[0])
    r = args["sr_ratio"]
    reduce = reduced * c * c * r * r if r > 1 else 0  # the sr conv
    projections = length * c * i + reduced * c * 2 * i + length * i * c  # q, kv, proj
    attention = 2 * length * reduced * i  # q k^T and attn v, summed over heads
    macs = n * (reduce + projections + attention)
    biases = length * c + (length * i + reduced * 2 * i if args["qkv_bias"] else 0)
    reduce_pointwise = reduced * c * (1 + 5) if r > 1 else 0  # sr bias, layernorm
    scale_softmax = length * i + 5 * args["num_heads"] * length * reduced
    return Cost(macs=macs, flops=2 * macs + n * (biases + reduce_pointwise + scale_softmax))


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return SpatialReductionAttention(
        ins[0].shape[3],
        args["num_heads"],
        args["sr_ratio"],
        args["qkv_bias"],
        args["norm_eps"],
        args["attn_drop"],
        device="meta",
        head_dim=args["head_dim"],
    )


def _channels(args: dict[str, Any], ins: list[TensorType]) -> ChannelRule:
    """Whole heads (their q, k, v rows and proj columns) can go inside the op. Model channels
    pass through only without reduction: the reducing conv and its layernorm mix them."""
    head_dim = args["head_dim"] or ins[0].shape[3] // args["num_heads"]
    heads = {
        "q.weight": (0, 1),
        "q.bias": (0, 1),
        "kv.weight": (0, 2),
        "kv.bias": (0, 2),
        "proj.weight": (1, 1),
    }
    coupled = args["sr_ratio"] == 1
    return ChannelRule(
        "heads",
        axis=-1 if coupled else None,
        out_params={"proj.weight": 0, "proj.bias": 0} if coupled else {},
        in_params={"q.weight": 1, "kv.weight": 1} if coupled else {},
        head_params=heads,
        resize=lambda a, n: {**a, "num_heads": n, "head_dim": head_dim},
    )


SR_ATTENTION = register_op(
    OpDef(
        name="sr_attention",
        doc="spatial-reduction multi-head attention over [N, H, W, C] (PVT v2: q, kv, sr, norm, proj)",
        args={
            "num_heads": Arg(INT),
            "sr_ratio": Arg(INT, 1, doc="keys/values come from an r x r stride-r conv; 1: none"),
            "qkv_bias": Arg(BOOL, True),
            "norm_eps": Arg(FLOAT, 1e-5, doc="eps of the layernorm after the reducing conv"),
            "attn_drop": Arg(FLOAT, 0.0),
            "head_dim": Arg(
                optional(INT), None, doc="per-head width; default C // num_heads (pruned heads)"
            ),
        },
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
        channels=_channels,
        sdpa_form="sr_attention_sdpa",  # archgraph.ops.fused_attention
    )
)
