"""Volumetric ops over NCDHW tensors: conv3d, max/average pooling and resizing in three dims.

They follow their 2-D counterparts (conv.py, pool.py, misc.py's upsample) dimension for
dimension, so 3-D U-Nets (Cicek et al. 2016) and hybrid 2-D/3-D nets (H-DenseUNet, Li et al.
2018) are written the same way as 2-D ones; batchnorm already normalizes rank-5 tensors.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import fx, nn

from archgraph.ir.types import TensorType
from archgraph.ops.conv import conv_channel_rule, conv_cost, conv_module, window_out
from archgraph.ops.fused_conv import PARTS_ARG, parts_type
from archgraph.ops.misc import interpolate_lower
from archgraph.ops.registry import (
    BOOL,
    FLOAT,
    INT,
    PASS_NCHW,
    STR,
    Arg,
    ArgKind,
    ArgTypeError,
    Cost,
    Emitter,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    explicit,
    need_rank,
    optional,
    register_op,
)


def _triple(v: Any) -> tuple[int, int, int]:
    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    if is_int(v):
        return (v, v, v)
    if isinstance(v, list | tuple) and len(v) == 3 and all(is_int(x) for x in v):
        return (v[0], v[1], v[2])
    raise ArgTypeError("an integer or a list of three integers")


TRIPLE = ArgKind(
    "int or [int, int, int]",
    _triple,
    {
        "oneOf": [
            {"type": "integer"},
            {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3},
        ]
    },
)


def _windows(
    x: TensorType, kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...],
    dilation: tuple[int, ...] = (1, 1, 1), ceil_mode: bool = False,
) -> tuple[int, int, int]:  # fmt: skip
    """Output depth, height and width of a 3-D sliding window over NCDHW `x`."""
    out = tuple(
        window_out(size, k, s, p, d, ceil_mode)
        for size, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation, strict=True)
    )
    if min(out) < 1:
        need = "x".join(
            str(d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation, strict=True)
        )
        raise ShapeMismatch(
            "the window does not fit the input",
            expected=f"an input of at least {need} voxels",
            found=f"{x} with kernel {kernel}, stride {stride}, padding {padding}",
            input_index=0,
        )
    return out  # type: ignore[return-value]


def _conv_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [5], "NCDHW")
    g, cout = args["groups"], args["out_channels"]
    if g < 1 or x.shape[1] % g or cout < 1 or cout % g:
        raise ShapeMismatch(
            f"input and output channels must divide into groups={g}",
            expected=f"channels divisible by {g}",
            found=f"{x.shape[1]} input and {cout} output channels",
            input_index=0,
        )
    spatial = _windows(x, args["kernel_size"], args["stride"], args["padding"], args["dilation"])
    return x.with_shape((x.shape[0], cout, *spatial))


def _conv_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    cin = ins[0].shape[1] // args["groups"]
    kd, kh, kw = args["kernel_size"]
    fan_in = cin * kd * kh * kw
    cout = args["out_channels"]
    specs = {"weight": ParamSpec((cout, cin, kd, kh, kw), "kaiming_uniform", fan_in=fan_in)}
    if args["bias"]:
        specs["bias"] = ParamSpec((cout,), "fan_in_uniform", fan_in=fan_in)
    return specs


CONV3D = register_op(
    OpDef(
        name="conv3d",
        doc="3-D convolution over NCDHW; in_channels come from the input",
        args={
            "out_channels": Arg(INT),
            "kernel_size": Arg(TRIPLE),
            "stride": Arg(TRIPLE, 1),
            "padding": Arg(TRIPLE, 0),
            "dilation": Arg(TRIPLE, 1),
            "groups": Arg(INT, 1),
            "bias": Arg(BOOL, True),
        },
        infer=_conv_infer,
        params=_conv_params,
        cost=conv_cost,
        module=conv_module(nn.Conv3d),
        channels=conv_channel_rule,
    )
)


def _parts_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return _conv_infer(args, [parts_type(args, ins)])


def _parts_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    return _conv_params(args, [parts_type(args, ins)])


def _parts_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    return conv_cost(args, [parts_type(args, ins)], out)


# conv3d over the channel concatenation of its inputs, which is never made: the dense-concat
# pass's split of a concat read only by convs (a 3-D U-Net's skip). Data here; the back end
# registers its runtime (archgraph.codegen.runtimes). Same id and parameters as the conv3d.
CONV3D_PARTS = register_op(
    OpDef(
        name="conv3d_parts",
        doc="conv3d over the channel concatenation of its first `parts` inputs (never made)",
        args={**CONV3D.args, "parts": PARTS_ARG},
        arity=(1, None),
        infer=_parts_infer,
        params=_parts_params,
        cost=_parts_cost,
    )
)


def _pool_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [5], "NCDHW")
    kernel, padding = args["kernel_size"], args["padding"]
    stride = args["stride"] or kernel
    if any(p > k // 2 for k, p in zip(kernel, padding, strict=True)):
        raise ShapeMismatch(
            "pooling padding is larger than half the window",
            expected="padding at most half the kernel",
            found=f"kernel {kernel}, padding {padding}",
        )
    spatial = _windows(x, kernel, stride, padding, ceil_mode=args["ceil_mode"])
    return x.with_shape((*x.shape[:2], *spatial))


def _pool_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    kd, kh, kw = args["kernel_size"]
    return Cost(flops=out.numel * kd * kh * kw)


def _lower_max(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(F.max_pool3d, (xs[0],), explicit(args, MAXPOOL3D.args))


def _lower_avg(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(F.avg_pool3d, (xs[0],), explicit(args, AVGPOOL3D.args))


_POOL_ARGS = {
    "kernel_size": Arg(TRIPLE),
    "stride": Arg(optional(TRIPLE), None, doc="defaults to kernel_size"),
    "padding": Arg(TRIPLE, 0),
    "ceil_mode": Arg(BOOL, False),
}

MAXPOOL3D = register_op(
    OpDef(
        name="maxpool3d",
        doc="max over 3-D sliding windows (NCDHW)",
        args=dict(_POOL_ARGS),
        infer=_pool_infer,
        cost=_pool_cost,
        lower=_lower_max,
        channels=PASS_NCHW,
    )
)
AVGPOOL3D = register_op(
    OpDef(
        name="avgpool3d",
        doc="mean over 3-D sliding windows (NCDHW)",
        args={**_POOL_ARGS, "count_include_pad": Arg(BOOL, True)},
        infer=_pool_infer,
        cost=_pool_cost,
        lower=_lower_avg,
        channels=PASS_NCHW,
    )
)


def _upsample_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [5], "NCDHW")
    size, scale = args["size"], args["scale_factor"]
    if (size is None) == (scale is None):
        raise ShapeMismatch(
            "upsample3d needs exactly one of size and scale_factor",
            expected="size or scale_factor",
            found=f"size={size}, scale_factor={scale}",
        )
    out = size if size is not None else tuple(int(d * scale) for d in x.shape[2:])
    if min(out) < 1:
        raise ShapeMismatch(
            "upsample3d output is empty", expected="a positive output size", found=str(out)
        )
    return x.with_shape((*x.shape[:2], *out))


def _upsample_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    # trilinear: 8 taps, 7 lerps of 2 flops (one multiply-add and one subtraction) each
    per = {"nearest": 0, "trilinear": 14}[args["mode"]]
    return Cost(flops=per * out.numel)


UPSAMPLE3D = register_op(
    OpDef(
        name="upsample3d",
        doc="volumetric resize by size or scale_factor (nearest, trilinear)",
        args={
            "size": Arg(optional(TRIPLE), None),
            "scale_factor": Arg(optional(FLOAT), None),
            "mode": Arg(STR, "nearest", choices=("nearest", "trilinear")),
            "align_corners": Arg(BOOL, False),
        },
        infer=_upsample_infer,
        cost=_upsample_cost,
        lower=interpolate_lower,
        channels=PASS_NCHW,
    )
)
