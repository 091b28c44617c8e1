"""Data movement without arithmetic: concat, flatten, reshape, permute, transpose.

Shapes in these ops' arguments count the batch dimension as dim 0, except reshape's `shape`,
which is the per-sample shape (the batch dimension is kept as it is).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    INT,
    INTS,
    Arg,
    ChannelRule,
    Emitter,
    OpDef,
    ShapeMismatch,
    channels_fixed,
    free,
    register_op,
)


def _axis(dim: int, rank: int, what: str) -> int:
    if not -rank <= dim < rank:
        raise ShapeMismatch(
            f"{what} is out of range", expected=f"a dim in [{-rank}, {rank - 1}]", found=str(dim)
        )
    return dim % rank


def _concat_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    first = ins[0]
    dim = _axis(args["dim"], first.rank, "concat dim")
    total = 0
    for i, t in enumerate(ins):
        same_rest = t.rank == first.rank and all(
            a == b for j, (a, b) in enumerate(zip(t.shape, first.shape, strict=True)) if j != dim
        )
        if not same_rest:
            want = list(first.shape)
            want[dim] = "*"  # type: ignore[call-overload]
            raise ShapeMismatch(
                f"concat inputs must agree on every dim but {dim}",
                expected="[" + ", ".join(str(d) for d in want) + "]",
                found=str(t),
                input_index=i,
            )
        total += t.shape[dim]
    shape = list(first.shape)
    shape[dim] = total
    return first.with_shape(tuple(shape))


def _concat_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(torch.cat, (list(xs),), {"dim": args["dim"]})


CONCAT = register_op(
    OpDef(
        name="concat",
        doc="concatenation along a dim (channels by default): dense and one-shot aggregation",
        args={"dim": Arg(INT, 1)},
        arity=(1, None),
        infer=_concat_infer,
        cost=free,
        lower=_concat_lower,
        channels=channels_fixed(ChannelRule("concat")),
    )
)


def _flatten_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = ins[0]
    s = _axis(args["start_dim"], x.rank, "start_dim")
    e = _axis(args["end_dim"], x.rank, "end_dim")
    if s == 0 or e < s:
        raise ShapeMismatch(
            "flatten must keep the batch dim and have start_dim <= end_dim",
            expected="1 <= start_dim <= end_dim",
            found=f"start_dim={args['start_dim']}, end_dim={args['end_dim']} on {x}",
        )
    n = 1
    for d in x.shape[s : e + 1]:
        n *= d
    return x.with_shape((*x.shape[:s], n, *x.shape[e + 1 :]))


def _flatten_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(torch.flatten, (xs[0], args["start_dim"], args["end_dim"]))


def _flatten_move(args: dict[str, Any], x: TensorType, axis: int) -> int | None:
    """Channels survive a flatten whose other merged dims have size 1 ([N, C, 1, 1] -> [N, C])."""
    s, e = args["start_dim"] % x.rank, args["end_dim"] % x.rank
    if axis < s:
        return axis
    if axis > e:
        return axis - (e - s)
    others = [d for i, d in enumerate(x.shape[s : e + 1], s) if i != axis]
    return s if all(d == 1 for d in others) else None


FLATTEN = register_op(
    OpDef(
        name="flatten",
        doc="merge dims start_dim..end_dim into one",
        args={"start_dim": Arg(INT, 1), "end_dim": Arg(INT, -1)},
        infer=_flatten_infer,
        cost=free,
        lower=_flatten_lower,
        channels=channels_fixed(ChannelRule("move", move=_flatten_move)),
    )
)


def _reshape_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = ins[0]
    shape = list(args["shape"])
    per_sample = x.numel // x.shape[0]
    holes = shape.count(-1)
    known = 1
    for d in shape:
        known *= d if d != -1 else 1
    ok = (
        holes <= 1
        and all(d > 0 or d == -1 for d in shape)
        and (per_sample % known == 0 if holes else known == per_sample)
    )
    if ok and holes:
        shape[shape.index(-1)] = per_sample // known
    if not ok:
        raise ShapeMismatch(
            "reshape must keep the number of elements per sample",
            expected=f"a per-sample shape of {per_sample} elements (at most one -1)",
            found=str(list(args["shape"])),
            input_index=0,
        )
    return x.with_shape((x.shape[0], *shape))


def _reshape_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.method("reshape", (xs[0], -1, *args["shape"]))


RESHAPE = register_op(
    OpDef(
        name="reshape",
        doc="reshape each sample to `shape` (per-sample, batch kept; one -1 allowed)",
        args={"shape": Arg(INTS)},
        infer=_reshape_infer,
        cost=free,
        lower=_reshape_lower,
    )
)


def _permute_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = ins[0]
    dims = args["dims"]
    if sorted(dims) != list(range(x.rank)) or dims[0] != 0:
        raise ShapeMismatch(
            "permute dims must be a permutation of all dims that keeps the batch dim first",
            expected=f"a permutation of 0..{x.rank - 1} starting with 0",
            found=str(list(dims)),
        )
    return x.with_shape(tuple(x.shape[d] for d in dims))


def _permute_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.method("permute", (xs[0], *args["dims"]))


PERMUTE = register_op(
    OpDef(
        name="permute",
        doc="reorder dims (dims count the batch as 0, which stays first)",
        args={"dims": Arg(INTS)},
        infer=_permute_infer,
        cost=free,
        lower=_permute_lower,
        channels=channels_fixed(
            ChannelRule("move", move=lambda a, x, axis: list(a["dims"]).index(axis))
        ),
    )
)


def _transpose_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = ins[0]
    a = _axis(args["dim0"], x.rank, "dim0")
    b = _axis(args["dim1"], x.rank, "dim1")
    if 0 in (a, b):
        raise ShapeMismatch(
            "transpose must keep the batch dim", expected="dims >= 1", found=f"{a}, {b}"
        )
    shape = list(x.shape)
    shape[a], shape[b] = shape[b], shape[a]
    return x.with_shape(tuple(shape))


def _transpose_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.method("transpose", (xs[0], args["dim0"], args["dim1"]))


def _transpose_move(args: dict[str, Any], x: TensorType, axis: int) -> int | None:
    a, b = args["dim0"] % x.rank, args["dim1"] % x.rank
    return b if axis == a else a if axis == b else axis


TRANSPOSE = register_op(
    OpDef(
        name="transpose",
        doc="swap two dims (not the batch dim)",
        args={"dim0": Arg(INT), "dim1": Arg(INT)},
        infer=_transpose_infer,
        cost=free,
        lower=_transpose_lower,
        channels=channels_fixed(ChannelRule("move", move=_transpose_move)),
    )
)
