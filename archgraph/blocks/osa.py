"""One-shot aggregation (VoVNet, Lee et al. 2019; VoVNetV2, Lee & Park 2020) with timm's layout
and names, so a timm vovnet state_dict loads strictly.

The unit is `osa_conv`: conv (no bias) `conv` -> batchnorm `bn` -> ReLU, timm's ConvNormAct; with
`separable` it is timm's SeparableConvNormAct instead, a depthwise kxk `conv_dw` and a 1x1
`conv_pw` before the one `bn`. timm fuses the batchnorm and its activation into one module
(BatchNormAct2d, named `bn`); here the activation is its own parameter-free node `bn.act`.

`osa_block` chains `layers` 3x3 units `conv_mid.0..layers-1`, each fed only by the one before;
the block input and every unit's output are concatenated once (`concat`) and aggregated by the
1x1 unit `conv_concat`. VoVNetV2 options: `ese` appends effective squeeze-excitation (`attn`),
`residual` adds the block input back (`add`), `depthwise` makes the chain depthwise-separable and,
where the input width differs from the chain's, first reduces it with a 1x1 unit
`conv_reduction` (the concatenation still takes the unreduced input).

`osa_stage` is timm's OsaStage: an optional 3x3 stride-2 max pool with ceil_mode (`pool`), then
`blocks.0..n-1`, where only the first block changes the width, the residual skips the first
block, and eSE sits on the last block only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin
from archgraph.errors import SpecError

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


def _same_padding(kernel_size: int, stride: int) -> int:
    """timm's default symmetric padding (timm.layers.get_padding, dilation 1)."""
    return (stride - 1 + kernel_size - 1) // 2


@builtin
def osa_conv(
    b: Builder,
    x: Value,
    *,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    separable: bool = False,
) -> Value:
    """conv -> `bn` -> ReLU `bn.act` (timm's ConvNormAct), or with `separable` a depthwise
    `conv_dw` and a pointwise `conv_pw` before `bn` (timm's SeparableConvNormAct)."""
    padding = _same_padding(kernel_size, stride)
    if separable:
        y = b.node(
            "conv2d",
            x,
            name="conv_dw",
            out_channels=x.channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            groups=x.channels,
            bias=False,
        )
        y = b.node(
            "conv2d", y, name="conv_pw", out_channels=out_channels, kernel_size=1, bias=False
        )
    else:
        y = b.node(
            "conv2d",
            x,
            name="conv",
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            bias=False,
        )
    y = b.node("batchnorm", y, name="bn")
    return b.node("relu", y, name="bn.act")


def _unit(b: Builder, x: Value, name: str, out: int, kernel_size: int, separable: bool) -> Value:
    with b.scope(name):
        return osa_conv(b, x, out_channels=out, kernel_size=kernel_size, separable=separable)


@builtin
def osa_block(
    b: Builder,
    x: Value,
    *,
    mid_channels: int,
    out_channels: int,
    layers: int,
    residual: bool = False,
    depthwise: bool = False,
    ese: bool = False,
) -> Value:
    """One-shot aggregation: `layers` chained 3x3 units, one concat of the input and all their
    outputs, a 1x1 aggregation; optional eSE, identity residual, depthwise-separable chain."""
    if residual and x.channels != out_channels:
        raise SpecError(
            "an osa_block with residual keeps its width",
            expected=f"out_channels equal to the input's {x.channels} channels",
            found=f"out_channels={out_channels}",
            hint="the first block of a stage changes the width; give it residual: false",
        )
    if layers < 1:
        raise SpecError("an osa_block needs at least one layer", expected=">= 1", found=str(layers))
    y = x
    if depthwise and x.channels != mid_channels:
        y = _unit(b, y, "conv_reduction", mid_channels, 1, separable=False)
    features = [x]
    for i in range(layers):
        y = _unit(b, y, f"conv_mid.{i}", mid_channels, 3, separable=depthwise)
        features.append(y)
    y = b.node("concat", *features, name="concat")
    y = _unit(b, y, "conv_concat", out_channels, 1, separable=False)
    if ese:
        y = b.block("effective_se", y, name="attn")
    return b.node("add", y, x, name="add") if residual else y


@builtin
def osa_stage(
    b: Builder,
    x: Value,
    *,
    mid_channels: int,
    out_channels: int,
    blocks: int,
    layers: int,
    downsample: bool = True,
    residual: bool = False,
    depthwise: bool = False,
    ese: bool = False,
) -> Value:
    """VoVNet stage: optional ceil-mode 3x3/2 max `pool`, then `blocks` OSA blocks (residual from
    the second block on, eSE on the last block only)."""
    if blocks < 1:
        raise SpecError("an osa_stage needs at least one block", expected=">= 1", found=str(blocks))
    if downsample:
        x = b.node("maxpool2d", x, name="pool", kernel_size=3, stride=2, ceil_mode=True)
    for i in range(blocks):
        x = b.block(
            "osa_block",
            x,
            name=f"blocks.{i}",
            mid_channels=mid_channels,
            out_channels=out_channels,
            layers=layers,
            residual=residual and i > 0,
            depthwise=depthwise,
            ese=ese and i == blocks - 1,
        )
    return x
