"""select: take one index along a dim, dropping that dim (a ViT's class token: dim 1, index 0,
timm's global_pool='token')."""

from __future__ import annotations

from typing import Any

from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    INT,
    Arg,
    ChannelRule,
    Emitter,
    OpDef,
    ShapeMismatch,
    channels_fixed,
    free,
    register_op,
)


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = ins[0]
    dim, index = args["dim"], args["index"]
    if not -x.rank <= dim < x.rank or dim % x.rank == 0:
        raise ShapeMismatch(
            "select dim must be a dim of the input other than the batch",
            expected=f"a dim in [1, {x.rank - 1}] (or its negative form)",
            found=f"dim={dim} on {x}",
            input_index=0,
        )
    size = x.shape[dim]
    if not -size <= index < size:
        raise ShapeMismatch(
            "select index is out of range",
            expected=f"an index in [{-size}, {size - 1}]",
            found=f"index={index} on dim {dim} of {x}",
            input_index=0,
        )
    return x.with_shape(tuple(d for i, d in enumerate(x.shape) if i != dim % x.rank))


def _lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.method("select", (xs[0], args["dim"], args["index"]))


def _move(args: dict[str, Any], x: TensorType, axis: int) -> int | None:
    dim = args["dim"] % x.rank
    return None if axis == dim else axis - (axis > dim)


SELECT = register_op(
    OpDef(
        name="select",
        doc="take one index along a dim (not the batch), dropping the dim",
        args={"dim": Arg(INT, 1), "index": Arg(INT, 0)},
        infer=_infer,
        cost=free,
        lower=_lower,
        channels=channels_fixed(ChannelRule("move", move=_move)),
    )
)
