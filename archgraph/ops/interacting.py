"""interacting: AutoInt's interacting layer (Song et al. 2019, eqs. 5-8) over field embeddings
[N, F, D].

For every head h and pair of fields (m, k) the layer scores psi(e_m, e_k) = <W_Query^(h) e_m,
W_Key^(h) e_k>, softmaxes the scores over k, and sums W_Value^(h) e_k with those weights; the heads
are concatenated and a residual projection W_Res e_m is added before a ReLU:

    e_m^Res = ReLU( concat_h( sum_k softmax_k(psi^(h)(e_m, e_k)) W_Value^(h) e_k ) + W_Res e_m )

The paper's score is the plain inner product, without the 1/sqrt(head_dim) of Transformer
attention: that is the default here (`scaling: false`); `scaling: true` divides by sqrt(head_dim).

Parameters are bias-free linear maps D -> num_heads * head_dim named `query`, `key`, `value` and
`residual` (W_Query, W_Key, W_Value, W_Res); head h owns rows [h * head_dim, (h + 1) * head_dim)
of each of the first three weights. The output is [N, F, num_heads * head_dim].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    BOOL,
    INT,
    Arg,
    Cost,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    need_rank,
    register_op,
)

PROJECTIONS = ("query", "key", "value", "residual")


class InteractingLayer(nn.Module):
    """Multi-head self-attention over fields with a projected residual and a ReLU (AutoInt)."""

    def __init__(
        self, dim: int, num_heads: int, head_dim: int, scaling: bool, device: Any = None
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.scale = head_dim**-0.5 if scaling else None
        inner = num_heads * head_dim
        self.query = nn.Linear(dim, inner, bias=False, device=device)
        self.key = nn.Linear(dim, inner, bias=False, device=device)
        self.value = nn.Linear(dim, inner, bias=False, device=device)
        self.residual = nn.Linear(dim, inner, bias=False, device=device)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """[N, F, H * d'] -> [N, H, F, d']."""
        n, fields, _ = t.shape
        return t.reshape(n, fields, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, fields, _ = x.shape
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = q @ k.transpose(-2, -1)
        if self.scale is not None:
            scores = scores * self.scale
        out = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, fields, -1)
        return torch.relu(out + self.residual(x))


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [3], "field embeddings [N, F, D]")
    for key in ("num_heads", "head_dim"):
        if args[key] < 1:
            raise ShapeMismatch(f"{key} must be positive", expected=">= 1", found=str(args[key]))
    n, fields, _ = x.shape
    return x.with_shape((n, fields, args["num_heads"] * args["head_dim"]))


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    dim = ins[0].shape[2]
    inner = args["num_heads"] * args["head_dim"]
    return {
        f"{name}.weight": ParamSpec((inner, dim), "kaiming_uniform", fan_in=dim)
        for name in PROJECTIONS
    }


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    n, fields, dim = ins[0].shape
    heads, head_dim = args["num_heads"], args["head_dim"]
    projections = len(PROJECTIONS) * n * fields * dim * heads * head_dim
    attention = 2 * n * heads * fields * fields * head_dim  # q k^T and scores @ v
    macs = projections + attention
    scores = n * heads * fields * fields
    softmax = 5 * scores
    scale = scores if args["scaling"] else 0
    residual_and_relu = 2 * out.numel
    return Cost(macs=macs, flops=2 * macs + softmax + scale + residual_and_relu)


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return InteractingLayer(
        ins[0].shape[2], args["num_heads"], args["head_dim"], args["scaling"], device="meta"
    )


INTERACTING = register_op(
    OpDef(
        name="interacting",
        doc="AutoInt interacting layer: multi-head self-attention over fields [N, F, D], "
        "projected residual, ReLU",
        args={
            "num_heads": Arg(INT, 2),
            "head_dim": Arg(INT, 32, doc="d', the attention size of one head"),
            "scaling": Arg(BOOL, False, doc="divide scores by sqrt(head_dim) (the paper does not)"),
        },
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
    )
)
