"""Slices of a volume as a batch of images, and back: how a hybrid 2-D/3-D net (H-DenseUNet,
Li et al. 2018) runs a 2-D network on every axial slice of an NCDHW volume and stacks the
per-slice results into a volume again for its 3-D path.

    slices_to_batch:  [N, C, D, H, W] -> [N * D, C, H, W]   (sample n's slice d is row n * D + d)
    batch_to_slices:  [N * D, C, H, W] -> [N, C, D, H, W]   (`depth` = D; the exact inverse)

Both keep channels at dim 1, so channel pruning passes through them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    INT,
    PASS_NCHW,
    Arg,
    Emitter,
    OpDef,
    ShapeMismatch,
    free,
    need_rank,
    register_op,
)


def _to_batch_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    n, c, d, h, w = need_rank(ins, [5], "NCDHW").shape
    return ins[0].with_shape((n * d, c, h, w))


def slices_as_batch(x: torch.Tensor) -> torch.Tensor:
    """[N, C, D, H, W] -> [N * D, C, H, W]."""
    return x.transpose(1, 2).flatten(0, 1)


def batch_as_slices(x: torch.Tensor, depth: int) -> torch.Tensor:
    """[N * depth, C, H, W] -> [N, C, depth, H, W]."""
    return x.unflatten(0, (-1, depth)).transpose(1, 2)


def _to_batch_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(slices_as_batch, (xs[0],))


def _to_slices_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    nd, c, h, w = need_rank(ins, [4], "NCHW (a batch of slices)").shape
    depth = args["depth"]
    if depth < 1 or nd % depth:
        raise ShapeMismatch(
            "the batch must hold whole volumes of `depth` slices",
            expected=f"a batch divisible by depth={depth}",
            found=f"batch {nd} in {ins[0]}",
            input_index=0,
        )
    return ins[0].with_shape((nd // depth, c, depth, h, w))


def _to_slices_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(batch_as_slices, (xs[0], args["depth"]))


SLICES_TO_BATCH = register_op(
    OpDef(
        name="slices_to_batch",
        doc="the depth slices of NCDHW volumes as a batch of NCHW images: [N*D, C, H, W]",
        infer=_to_batch_infer,
        cost=free,
        lower=_to_batch_lower,
        channels=PASS_NCHW,
    )
)
BATCH_TO_SLICES = register_op(
    OpDef(
        name="batch_to_slices",
        doc="a batch of N*depth slice images back to N volumes: [N, C, depth, H, W]",
        args={"depth": Arg(INT)},
        infer=_to_slices_infer,
        cost=free,
        lower=_to_slices_lower,
        channels=PASS_NCHW,
    )
)
