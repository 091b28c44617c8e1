"""Fused ops for training pipelines (made by the train-mode passes, archgraph.passes.pipelines):
they keep the training behaviour of what they replace, so a compiled module trains like -O0.

- `batchnorm_act`: a batchnorm, then an activation (one of the unary pointwise steps, or
  "none"). The batchnorm is PyTorch's own (`_BatchNorm.forward`): batch statistics in training
  with the running-statistics update PyTorch makes (momentum, unbiased running_var,
  num_batches_tracked), running statistics in eval.
  Its tensors are the batchnorm's (`weight`, `bias`, `running_mean`, `running_var`,
  `num_batches_tracked`), so the fused node keeps the batchnorm's state_dict keys. ReLU,
  sigmoid and tanh run in place on the normalized tensor (their backward needs only their
  output, and batchnorm's backward never reads its output), so the pair allocates one tensor.
  With `recompute` (a dense layer's BN-ReLU over its block's concatenation), a training call
  keeps only its input and batch statistics and the conv reading it recomputes it in backward
  (archgraph.codegen.kernels.recompute; ReLU or no activation). Its runtime is the back end's
  (archgraph.codegen.runtimes).
- `sdpa_dropout`: softmax(q k^T * scale) with dropout, times v, as one
  F.scaled_dot_product_attention call (the explicit matmul-softmax-dropout-matmul pattern);
  dropout_p applies only while the module is training. The draws come from torch's generator
  in the order the unfused pattern makes them (SDPA's CPU path calls the same dropout).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.fused import unary_steps
from archgraph.ops.fused_attention import SDPA
from archgraph.ops.norm import BATCHNORM
from archgraph.ops.registry import BOOL, FLOAT, STR, Arg, Cost, OpDef, get_step, register_op

ACTIVATIONS = ("none", *unary_steps())


def _bn_act_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    act = get_step(args["activation"]).flops if args["activation"] != "none" else 0
    return Cost(flops=(2 + act) * out.numel)


BATCHNORM_ACT = register_op(
    OpDef(
        name="batchnorm_act",
        doc="batchnorm (training statistics while training) followed by an activation",
        args={
            **BATCHNORM.args,
            "activation": Arg(STR, "none", choices=ACTIVATIONS),
            "recompute": Arg(BOOL, False, doc="training: recompute in backward (ReLU or none)"),
        },
        infer=BATCHNORM.infer,
        params=BATCHNORM.params,
        cost=_bn_act_cost,
        channels=BATCHNORM.channels,
    )
)


class SdpaDropout(nn.Module):
    def __init__(self, scale: float | None, dropout_p: float) -> None:
        super().__init__()
        self.scale, self.dropout_p = scale, dropout_p

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        p = self.dropout_p if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p, scale=self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, dropout_p={self.dropout_p}"


def _sdpa_dropout_module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return SdpaDropout(args["scale"], args["dropout_p"])


SDPA_DROPOUT = register_op(
    OpDef(
        name="sdpa_dropout",
        doc="scaled dot-product attention with dropout on the weights (while training)",
        args={**SDPA.args, "dropout_p": Arg(FLOAT, 0.0, doc="dropout on the attention weights")},
        arity=(3, 3),
        infer=SDPA.infer,
        cost=SDPA.cost,
        module=_sdpa_dropout_module,
    )
)
