"""weighted_sum: learned re-weighting of N feature maps of one shape (feature pyramid fusion).

Fast normalized fusion (BiFPN, Tan et al. 2020, eq. 3): with one learned scalar w_i per input,
kept non-negative by a ReLU,

    out = sum_i relu(w_i) * x_i / (eps + sum_j relu(w_j))

The weights start at 1, so an untrained fusion is the mean of its inputs (up to eps). This is
BiFPN's choice over a softmax: the same normalization to [0, 1] without the exponentials.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    FLOAT,
    Arg,
    Cost,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    register_op,
    same_shape,
)


class WeightedSum(nn.Module):
    """sum_i relu(w_i) x_i / (eps + sum_j relu(w_j)) over the module's inputs."""

    def __init__(self, num_inputs: int, eps: float, device: Any = None) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(num_inputs, device=device))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        w = torch.relu(self.weight)
        w = w / (w.sum() + self.eps)
        out = xs[0] * w[0]
        for i in range(1, len(xs)):
            out = out + xs[i] * w[i]
        return out


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    for i, t in enumerate(ins[1:], start=1):
        same_shape("weighted_sum inputs must have one shape", ins[0], t, i)
    if args["eps"] <= 0:
        raise ShapeMismatch("eps must be positive", expected="> 0", found=str(args["eps"]))
    return ins[0]


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    return {"weight": ParamSpec((len(ins),), "ones")}


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    # a multiply per input and an add per input but the first, for every output element
    return Cost(macs=0, flops=(2 * len(ins) - 1) * out.numel)


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return WeightedSum(len(ins), args["eps"], device="meta")


WEIGHTED_SUM = register_op(
    OpDef(
        name="weighted_sum",
        doc="learned non-negative weighted mean of N same-shape inputs (BiFPN fast normalized "
        "fusion)",
        args={"eps": Arg(FLOAT, 1e-4)},
        arity=(2, None),
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
    )
)
