"""Layout and slicing ops made by the -O2 passes:

- `memory_format`: the same values in another physical layout (channels_last: NHWC storage of
  an NCHW-typed tensor; contiguous: NCHW storage), where the layout pass changes layout;
- `narrow`: `length` entries of `dim` from `start` (a view): the slices of a horizontally merged
  conv or linear handed back to each original consumer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    INT,
    STR,
    Arg,
    Emitter,
    OpDef,
    ShapeMismatch,
    free,
    need_rank,
    register_op,
)
from archgraph.ops.shape import _axis

_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def _format_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return need_rank(ins, [4], "NCHW")


def _format_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.method("contiguous", (xs[0],), {"memory_format": _FORMATS[args["format"]]})


MEMORY_FORMAT = register_op(
    OpDef(
        name="memory_format",
        doc="the same values stored in another layout (channels_last or contiguous NCHW)",
        args={"format": Arg(STR, choices=tuple(_FORMATS))},
        infer=_format_infer,
        cost=free,
        lower=_format_lower,
    )
)


def _narrow_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = ins[0]
    dim = _axis(args["dim"], x.rank, "narrow dim")
    start, length = args["start"], args["length"]
    if dim == 0 or start < 0 or length < 1 or start + length > x.shape[dim]:
        raise ShapeMismatch(
            "narrow must take a non-empty range of a dim other than the batch",
            expected=f"dim >= 1 and 0 <= start < start + length <= {x.shape[dim]}",
            found=f"dim={args['dim']}, start={start}, length={length} on {x}",
            input_index=0,
        )
    shape = list(x.shape)
    shape[dim] = length
    return x.with_shape(tuple(shape))


def _narrow_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.method("narrow", (xs[0], args["dim"], args["start"], args["length"]))


NARROW = register_op(
    OpDef(
        name="narrow",
        doc="entries [start, start + length) of a dim (a view; the batch dim stays whole)",
        args={"dim": Arg(INT), "start": Arg(INT), "length": Arg(INT)},
        infer=_narrow_infer,
        cost=free,
        lower=_narrow_lower,
    )
)
