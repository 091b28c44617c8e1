"""conv_transpose2d: 2-D transposed convolution (the gradient of conv2d; learned upsampling in
decoders), with stride, padding, output_padding, dilation, groups and optional bias, laid out
like torch's nn.ConvTranspose2d: weight [in_channels, out_channels / groups, kh, kw]."""

from __future__ import annotations

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


def transposed_out(size: int, k: int, s: int, p: int, op: int, d: int) -> int:
    """Output length of a transposed convolution, PyTorch's formula."""
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


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
    (kh, kw), (sh, sw), (ph, pw), (oh, ow), (dh, dw) = (
        args["kernel_size"],
        args["stride"],
        args["padding"],
        args["output_padding"],
        args["dilation"],
    )
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(ph, pw, oh, ow) < 0:
        raise ShapeMismatch(
            "transposed convolution sizes must be positive",
            expected="kernel_size, stride and dilation >= 1; padding and output_padding >= 0",
            found=f"kernel {kh}x{kw}, stride {sh}x{sw}, padding {ph}x{pw}, "
            f"output_padding {oh}x{ow}, dilation {dh}x{dw}",
        )
    if oh >= max(sh, dh) or ow >= max(sw, dw):
        raise ShapeMismatch(
            "output_padding must be smaller than stride or dilation",
            expected=f"output_padding < max(stride, dilation) = {max(sh, dh)}x{max(sw, dw)}",
            found=f"{oh}x{ow}",
        )
    ho, wo = transposed_out(h, kh, sh, ph, oh, dh), transposed_out(w, kw, sw, pw, ow, dw)
    if ho < 1 or wo < 1:
        raise ShapeMismatch(
            "padding leaves an empty output",
            expected="a positive output size",
            found=f"{ho}x{wo} from {x}",
            input_index=0,
        )
    return x.with_shape((n, cout, ho, wo))


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    cin, g = ins[0].shape[1], args["groups"]
    kh, kw = args["kernel_size"]
    per_group = args["out_channels"] // g
    fan_in = per_group * kh * kw  # torch computes fan_in from the weight's dim 1
    specs = {"weight": ParamSpec((cin, per_group, kh, kw), "kaiming_uniform", fan_in=fan_in)}
    if args["bias"]:
        specs["bias"] = ParamSpec((args["out_channels"],), "fan_in_uniform", fan_in=fan_in)
    return specs


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    """Every input pixel scatters a kh x kw x (out/groups) patch: MACs over the input's pixels
    (what torch.utils.flop_counter counts for a transposed convolution)."""
    kh, kw = args["kernel_size"]
    macs = ins[0].numel * (args["out_channels"] // args["groups"]) * kh * kw
    return Cost(macs=macs, flops=2 * macs + (out.numel if args["bias"] else 0))


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return nn.ConvTranspose2d(
        ins[0].shape[1],
        args["out_channels"],
        args["kernel_size"],
        stride=args["stride"],
        padding=args["padding"],
        output_padding=args["output_padding"],
        groups=args["groups"],
        bias=args["bias"],
        dilation=args["dilation"],
        device="meta",
    )


def _channels(args: dict[str, Any], ins: list[TensorType]) -> ChannelRule:
    """Ungrouped: new output channels (weight dim 1), input channels read by weight dim 0.
    Grouped ones tie channels in groups, which pruning leaves alone."""
    if args["groups"] != 1:
        return ChannelRule("reduce", axis=1)
    return ChannelRule(
        "produce",
        axis=1,
        in_axis=1,
        out_params={"weight": 1, "bias": 0},
        in_params={"weight": 0},
        resize=lambda a, n: {**a, "out_channels": n},
    )


CONV_TRANSPOSE2D = register_op(
    OpDef(
        name="conv_transpose2d",
        doc="2-D transposed convolution over NCHW (learned upsampling), torch's weight layout",
        args={
            "out_channels": Arg(INT),
            "kernel_size": Arg(PAIR),
            "stride": Arg(PAIR, 1),
            "padding": Arg(PAIR, 0),
            "output_padding": Arg(PAIR, 0),
            "dilation": Arg(PAIR, 1),
            "groups": Arg(INT, 1),
            "bias": Arg(BOOL, True),
        },
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
        channels=_channels,
    )
)
