"""Pooling over NCHW: max and average windows, and their adaptive (output-sized) forms."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.conv import window_out
from archgraph.ops.registry import (
    BOOL,
    PAIR,
    PASS_NCHW,
    Arg,
    Cost,
    Emitter,
    OpDef,
    ShapeMismatch,
    explicit,
    need_rank,
    optional,
    register_op,
)


def _window_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [4], "NCHW")
    n, c, h, w = x.shape
    (kh, kw), (ph, pw) = args["kernel_size"], args["padding"]
    sh, sw = args["stride"] or args["kernel_size"]
    dh, dw = args.get("dilation", (1, 1))
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0 or ph > kh // 2 or pw > kw // 2:
        raise ShapeMismatch(
            "pooling window does not fit its arguments",
            expected="positive kernel and stride, padding at most half the kernel",
            found=f"kernel {kh}x{kw}, stride {sh}x{sw}, padding {ph}x{pw}",
        )
    ho = window_out(h, kh, sh, ph, dh, args["ceil_mode"])
    wo = window_out(w, kw, sw, pw, dw, args["ceil_mode"])
    if ho < 1 or wo < 1:
        raise ShapeMismatch(
            "pooling window is larger than the input",
            expected=f"an input of at least {kh}x{kw} pixels",
            found=str(x),
            input_index=0,
        )
    return x.with_shape((n, c, ho, wo))


def _window_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    kh, kw = args["kernel_size"]
    return Cost(flops=out.numel * kh * kw)


def _lower_max(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(F.max_pool2d, (xs[0],), explicit(args, MAXPOOL2D.args))


def _lower_avg(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(F.avg_pool2d, (xs[0],), explicit(args, AVGPOOL2D.args))


_WINDOW_ARGS = {
    "kernel_size": Arg(PAIR),
    "stride": Arg(optional(PAIR), None, doc="defaults to kernel_size"),
    "padding": Arg(PAIR, 0),
    "ceil_mode": Arg(BOOL, False),
}

MAXPOOL2D = register_op(
    OpDef(
        name="maxpool2d",
        fresh_output=True,
        doc="max over sliding windows",
        args={**_WINDOW_ARGS, "dilation": Arg(PAIR, 1)},
        infer=_window_infer,
        cost=_window_cost,
        lower=_lower_max,
        channels=PASS_NCHW,
    )
)
AVGPOOL2D = register_op(
    OpDef(
        name="avgpool2d",
        doc="mean over sliding windows",
        args={**_WINDOW_ARGS, "count_include_pad": Arg(BOOL, True)},
        infer=_window_infer,
        cost=_window_cost,
        lower=_lower_avg,
        channels=PASS_NCHW,
    )
)


def _adaptive_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [4], "NCHW")
    oh, ow = args["output_size"]
    if oh < 1 or ow < 1:
        raise ShapeMismatch("output_size must be positive", expected=">= 1", found=str((oh, ow)))
    return x.with_shape((*x.shape[:2], oh, ow))


def _adaptive_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    return Cost(flops=ins[0].numel)


def _lower_adaptive(fn: Any) -> Any:
    def lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
        return emit.function(fn, (xs[0],), {"output_size": args["output_size"]})

    return lower


ADAPTIVE_AVGPOOL2D = register_op(
    OpDef(
        name="adaptive_avgpool2d",
        doc="mean pooling to a fixed output size (output_size: 1 is global average pooling)",
        args={"output_size": Arg(PAIR, 1)},
        infer=_adaptive_infer,
        cost=_adaptive_cost,
        lower=_lower_adaptive(F.adaptive_avg_pool2d),
        channels=PASS_NCHW,
    )
)
ADAPTIVE_MAXPOOL2D = register_op(
    OpDef(
        name="adaptive_maxpool2d",
        doc="max pooling to a fixed output size",
        args={"output_size": Arg(PAIR, 1)},
        infer=_adaptive_infer,
        cost=_adaptive_cost,
        lower=_lower_adaptive(F.adaptive_max_pool2d),
        channels=PASS_NCHW,
    )
)
