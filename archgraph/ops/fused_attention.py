"""Attention as one scaled-dot-product-attention call (made by the SDPA pass):

- `sdpa`: softmax(q k^T * scale) v over inputs q [..., L, E], k [..., S, E], v [..., S, Ev]
  (the explicit matmul-softmax-matmul pattern, rewritten);
- `mhsa_sdpa`, `sr_attention_sdpa`, `window_attention_sdpa` and `inverted_window_attention_sdpa`:
  the `mhsa`, `sr_attention`, `window_attention` and `inverted_window_attention` ops with the same
  arguments, parameters and state_dict keys, whose attention
  core is one F.scaled_dot_product_attention call instead of two matmuls and a softmax (Swin's
  relative position bias and shifted-window mask passed as its additive attn_mask).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from archgraph.ir.types import TensorType
from archgraph.ops.attention import MHSA, MultiHeadSelfAttention
from archgraph.ops.inverted_window_attention import (
    INVERTED_WINDOW_ATTENTION,
    InvertedWindowAttention,
)
from archgraph.ops.registry import (
    FLOAT,
    Arg,
    Cost,
    Emitter,
    OpDef,
    ShapeMismatch,
    optional,
    register_op,
)
from archgraph.ops.sr_attention import SR_ATTENTION, SpatialReductionAttention
from archgraph.ops.window_attention import WINDOW_ATTENTION, WindowAttention

# ---- sdpa ---------------------------------------------------------------------------------------


def _sdpa_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    q, k, v = ins
    if min(q.rank, k.rank, v.rank) < 3 or not q.rank == k.rank == v.rank:
        raise ShapeMismatch(
            "sdpa needs q, k, v of one rank >= 3 (batch first)",
            expected="[N, ..., L, E] three times",
            found=f"{q}, {k}, {v}",
        )
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-2] != v.shape[:-2]:
        raise ShapeMismatch(
            "sdpa inputs must agree on the leading dims",
            expected=f"[{', '.join(map(str, q.shape[:-2]))}, ...] for k and v",
            found=f"{k}, {v}",
            input_index=1,
        )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeMismatch(
            "sdpa: q and k must share the feature size, k and v the sequence length",
            expected=f"k [..., S, {q.shape[-1]}] and v [..., S, Ev]",
            found=f"k {k}, v {v}",
            input_index=1,
        )
    return q.with_shape((*q.shape[:-1], v.shape[-1]))


def _sdpa_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    q, k, v = ins
    batch = math.prod(q.shape[:-2])
    length, source, e, ev = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    macs = batch * length * source * (e + ev)
    return Cost(macs=macs, flops=2 * macs + 6 * batch * length * source)


def _sdpa_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    kwargs = {} if args["scale"] is None else {"scale": args["scale"]}
    return emit.function(F.scaled_dot_product_attention, tuple(xs), kwargs)


SDPA = register_op(
    OpDef(
        name="sdpa",
        doc="scaled dot-product attention softmax(q k^T * scale) v of inputs q, k, v",
        args={"scale": Arg(optional(FLOAT), None, doc="default 1 / sqrt(E)")},
        arity=(3, 3),
        infer=_sdpa_infer,
        cost=_sdpa_cost,
        lower=_sdpa_lower,
    )
)


# ---- the SDPA forms of the attention ops ---------------------------------------------------------


def _dropout_p(module: nn.Module) -> float:
    return module.attn_drop.p if module.training else 0.0


def _sdpa(module: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, dropout_p=_dropout_p(module))


class SdpaSelfAttention(MultiHeadSelfAttention):
    """MultiHeadSelfAttention with its core as one F.scaled_dot_product_attention call."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return _sdpa(self, q, k, v)


class SdpaSpatialReductionAttention(SpatialReductionAttention):
    """SpatialReductionAttention with its core as one F.scaled_dot_product_attention call."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return _sdpa(self, q, k, v)


class SdpaWindowAttention(WindowAttention):
    """WindowAttention with its core as one F.scaled_dot_product_attention call, the bias and
    the shifted-window mask summed into its attn_mask."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        mask = self.attention_bias(q.shape[0]).to(q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=_dropout_p(self))


class SdpaInvertedWindowAttention(InvertedWindowAttention):
    """InvertedWindowAttention with its core as one F.scaled_dot_product_attention call."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)


def _swap_class(base: OpDef, cls: type[nn.Module]) -> Any:
    assert base.module is not None

    def make(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
        module = base.module(args, ins)
        module.__class__ = cls  # same state and attributes, another forward
        return module

    return make


def _sdpa_variant(base: OpDef, module_class: type[nn.Module]) -> OpDef:
    """`base` with the same arguments, rules and parameters, computed with SDPA."""
    return register_op(
        OpDef(
            name=f"{base.name}_sdpa",
            doc=f"{base.name} (same arguments and parameters) computed with scaled_dot_product_attention",
            args=dict(base.args),
            arity=base.arity,
            infer=base.infer,
            params=base.params,
            cost=base.cost,
            module=_swap_class(base, module_class),
        )
    )


MHSA_SDPA = _sdpa_variant(MHSA, SdpaSelfAttention)
SR_ATTENTION_SDPA = _sdpa_variant(SR_ATTENTION, SdpaSpatialReductionAttention)
WINDOW_ATTENTION_SDPA = _sdpa_variant(WINDOW_ATTENTION, SdpaWindowAttention)
INVERTED_WINDOW_ATTENTION_SDPA = _sdpa_variant(
    INVERTED_WINDOW_ATTENTION, SdpaInvertedWindowAttention
)
