"""Dense-block buffers (made by the dense-concat pass): one preallocated buffer per dense block,
into which each layer writes its output once, instead of re-concatenating every earlier feature
map for every layer (quadratic copying):

    buf0 = buffer_init(f0, channels=C)       # [N, C, ...], f0 in channels [0, c0)
    buf1 = buffer_write(buf0, f1, offset=c0) # f1 into [c0, c0 + c1); the same storage
    x1   = buffer_prefix(buf1, channels=c0 + c1)  # a view: concat(f0, f1), no copy

Values and aliasing: a buffer value `buf_k` is the storage after k writes; only its first
channels (those written so far) are defined. Every write goes to channels no earlier value's
prefix covers, so a prefix view taken from `buf_k` keeps its contents whatever runs later, and
each buffer value is consumed only by the next write and by prefixes: the pass builds exactly
this chain. `tag` names the block, so two buffers are never merged as equal expressions.

buffer_init and buffer_write are data here; the back end registers their runtimes
(archgraph.codegen.runtimes: one copy kernel on CUDA tensors).
With gradients the three are autograd Functions (archgraph.codegen.kernels.cpu), so a
compiled module trains through its buffers without copies.
"""

from __future__ import annotations

from typing import Any

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    INT,
    STR,
    Arg,
    OpDef,
    ShapeMismatch,
    free,
    need_rank,
    register_op,
)


def _channels_of(x: TensorType, what: str) -> None:
    if x.rank < 2:
        raise ShapeMismatch(
            f"{what} needs channels at dim 1", expected="a tensor of rank >= 2", found=str(x)
        )


def _init_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = ins[0]
    _channels_of(x, "buffer_init")
    if args["channels"] < x.shape[1]:
        raise ShapeMismatch(
            "the buffer must hold its first input",
            expected=f"channels >= {x.shape[1]}",
            found=str(args["channels"]),
        )
    return x.with_shape((x.shape[0], args["channels"], *x.shape[2:]))


BUFFER_INIT = register_op(
    OpDef(
        name="buffer_init",
        doc="allocate a [N, channels, ...] buffer and write the input into its first channels",
        args={"channels": Arg(INT), "tag": Arg(STR, "", doc="the block the buffer serves")},
        infer=_init_infer,
        cost=free,
    )
)


def _write_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    buf, y = ins
    _channels_of(buf, "buffer_write")
    off = args["offset"]
    fits = (
        y.rank == buf.rank
        and y.dtype == buf.dtype
        and y.shape[0] == buf.shape[0]
        and y.shape[2:] == buf.shape[2:]
        and off >= 0
        and off + (y.shape[1] if y.rank > 1 else 0) <= buf.shape[1]
    )
    if not fits:
        raise ShapeMismatch(
            "buffer_write: the value does not fit the buffer at this offset",
            expected=f"[{buf.shape[0]}, c, {', '.join(map(str, buf.shape[2:]))}] with "
            f"{off} + c <= {buf.shape[1]}",
            found=str(y),
            input_index=1,
        )
    return buf


BUFFER_WRITE = register_op(
    OpDef(
        name="buffer_write",
        doc="write input 2 into channels [offset, offset + c) of buffer input 1 (in place)",
        args={"offset": Arg(INT)},
        arity=(2, 2),
        infer=_write_infer,
        cost=free,
    )
)


def _prefix_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    buf = need_rank(ins, [2, 3, 4, 5], "a buffer with channels at dim 1")
    if not 1 <= args["channels"] <= buf.shape[1]:
        raise ShapeMismatch(
            "buffer_prefix takes 1 to all of the buffer's channels",
            expected=f"1 <= channels <= {buf.shape[1]}",
            found=str(args["channels"]),
        )
    return buf.with_shape((buf.shape[0], args["channels"], *buf.shape[2:]))


BUFFER_PREFIX = register_op(
    OpDef(
        name="buffer_prefix",
        doc="a view of the first `channels` channels of a buffer (no copy)",
        args={"channels": Arg(INT)},
        infer=_prefix_infer,
        cost=free,
    )
)
