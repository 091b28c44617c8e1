"""stochastic_depth: drop a residual branch at random while training (Huang et al. 2016, "Deep
Networks with Stochastic Depth"; torchvision.ops.StochasticDepth): with probability `p` the
branch's output is zeroed, otherwise divided by 1 - p, per sample (`mode: row`) or for the whole
batch at once (`mode: batch`). The identity in eval mode, the semantics -O1/-O2 keep. A module
op (it knows train from eval), with no state; it moves no channels and costs nothing counted.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    FLOAT,
    PASS_ANY,
    STR,
    Arg,
    OpDef,
    ShapeMismatch,
    free,
    register_op,
)


class StochasticDepth(nn.Module):
    """torchvision.ops.stochastic_depth as a module: random only in training."""

    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        shape = [x.shape[0]] + [1] * (x.dim() - 1) if self.mode == "row" else [1] * x.dim()
        noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, mode={self.mode}"


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    if not 0.0 <= args["p"] <= 1.0:
        raise ShapeMismatch(
            "stochastic depth drop rate out of range", expected="0 <= p <= 1", found=str(args["p"])
        )
    return ins[0]


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return StochasticDepth(args["p"], args["mode"])


STOCHASTIC_DEPTH = register_op(
    OpDef(
        name="stochastic_depth",
        doc="drop the whole input with probability p while training (per sample or batch); identity in eval",
        args={
            "p": Arg(FLOAT, doc="the drop rate"),
            "mode": Arg(
                STR, "row", choices=("row", "batch"), doc="row: per sample; batch: all at once"
            ),
        },
        infer=_infer,
        cost=free,
        module=_module,
        eval_identity=True,  # removed at -O1 and above, like dropout
        channels=PASS_ANY,
    )
)
