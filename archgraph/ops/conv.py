"""conv2d: 2-D convolution with stride, padding, dilation, groups and optional bias."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    BOOL,
    INT,
    PAIR,
    Arg,
    ChannelRule,
    Cost,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    need_rank,
    register_op,
)


def window_out(size: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a sliding window (convolution or pooling), PyTorch's formula."""
    if min(k, s, d) < 1 or p < 0:
        raise ShapeMismatch(
            "window sizes must be positive",
            expected="kernel_size, stride and dilation >= 1, padding >= 0",
            found=f"kernel_size {k}, stride {s}, padding {p}, dilation {d}",
        )
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [4], "NCHW")
    n, c, h, w = x.shape
    g, cout = args["groups"], args["out_channels"]
    if g < 1 or c % g:
        raise ShapeMismatch(
            f"input channels must divide into groups={g}",
            expected=f"channels divisible by {g}",
            found=f"{c} channels in {x}",
            input_index=0,
        )
    if cout < 1 or cout % g:
        raise ShapeMismatch(
            f"out_channels must be a positive multiple of groups={g}",
            expected=f"a multiple of {g}",
            found=str(cout),
        )
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
        args["kernel_size"],
        args["stride"],
        args["padding"],
        args["dilation"],
    )
    ho, wo = window_out(h, kh, sh, ph, dh), window_out(w, kw, sw, pw, dw)
    if ho < 1 or wo < 1 or min(sh, sw, dh, dw, kh, kw) < 1 or min(ph, pw) < 0:
        raise ShapeMismatch(
            "kernel, stride, padding or dilation do not fit the input",
            expected=f"an input of at least {dh * (kh - 1) + 1 - 2 * ph}x{dw * (kw - 1) + 1 - 2 * pw} pixels and positive sizes",
            found=f"{x} with kernel {kh}x{kw}, stride {sh}x{sw}, padding {ph}x{pw}, dilation {dh}x{dw}",
            input_index=0,
        )
    return x.with_shape((n, cout, ho, wo))


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    cin = ins[0].shape[1] // args["groups"]
    kh, kw = args["kernel_size"]
    fan_in = cin * kh * kw
    specs = {
        "weight": ParamSpec((args["out_channels"], cin, kh, kw), "kaiming_uniform", fan_in=fan_in)
    }
    if args["bias"]:
        specs["bias"] = ParamSpec((args["out_channels"],), "fan_in_uniform", fan_in=fan_in)
    return specs


def conv_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    """Each output element: (in_channels / groups) x the kernel's taps MACs (any rank)."""
    macs = out.numel * (ins[0].shape[1] // args["groups"]) * math.prod(args["kernel_size"])
    return Cost(macs=macs, flops=2 * macs + (out.numel if args["bias"] else 0))


def conv_module(cls: type[nn.Module]) -> Callable[[dict[str, Any], list[TensorType]], nn.Module]:
    """The module maker of a convolution op over `cls` (nn.Conv2d, nn.Conv3d)."""

    def make(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
        return cls(
            ins[0].shape[1],
            args["out_channels"],
            args["kernel_size"],
            stride=args["stride"],
            padding=args["padding"],
            dilation=args["dilation"],
            groups=args["groups"],
            bias=args["bias"],
            device="meta",
        )

    return make


def conv_channel_rule(args: dict[str, Any], ins: list[TensorType]) -> ChannelRule:
    """Dense convs produce channels; a depthwise conv (groups = in = out channels) passes its
    input's; other grouped convs tie channels in groups, which pruning leaves alone."""
    g, cin = args["groups"], ins[0].shape[1]
    if g == 1:
        return ChannelRule(
            "produce",
            axis=1,
            in_axis=1,
            out_params={"weight": 0, "bias": 0},
            in_params={"weight": 1},
            resize=lambda a, n: {**a, "out_channels": n},
        )
    if g == cin == args["out_channels"]:
        return ChannelRule(
            "pass",
            axis=1,
            out_params={"weight": 0, "bias": 0},
            resize=lambda a, n: {**a, "out_channels": n, "groups": n},
        )
    return ChannelRule("reduce", axis=1)


CONV2D = register_op(
    OpDef(
        name="conv2d",
        fresh_output=True,
        doc="2-D convolution over NCHW; in_channels come from the input",
        args={
            "out_channels": Arg(INT),
            "kernel_size": Arg(PAIR),
            "stride": Arg(PAIR, 1),
            "padding": Arg(PAIR, 0),
            "dilation": Arg(PAIR, 1),
            "groups": Arg(INT, 1),
            "bias": Arg(BOOL, True),
        },
        infer=_infer,
        params=_params,
        cost=conv_cost,
        module=conv_module(nn.Conv2d),
        channels=conv_channel_rule,
        fused="conv2d_fused",  # archgraph.ops.fused_conv: prologue, epilogue, prepack
        fold_axis=1,
        channels_last=True,
        stack=(1, "out_channels"),
    )
)
