"""Encoder-decoder units for 2-D and 3-D segmentation nets (`dims: 2` over NCHW images,
`dims: 3` over NCDHW volumes):

- `double_conv`: (3x3 conv -> batchnorm -> ReLU) twice, the unit of U-Net (Ronneberger et al.,
  MICCAI 2015; batchnorm and padded convs as in today's U-Net implementations) and of the 3-D
  U-Net (Cicek et al., MICCAI 2016).
- `residual_unit`: conv-BN-ReLU-conv-BN plus the input (a 1x1 conv + BN projection when the width
  or stride changes), then ReLU: the unit of residual 3-D U-Nets for brain-tumour (glioma)
  segmentation (e.g. Kayalibay et al. 2017; Isensee et al. 2018).
- `unet_up`: the decoder step: up-sample the coarse input to the skip's size (bilinear or
  trilinear), concatenate [skip, up-sampled] on the channels, and apply a unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.dims import spatial_op
from archgraph.blocks.registry import builtin

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


@builtin
def double_conv(
    b: Builder, x: Value, *, out_channels: int, mid_channels: int | None = None, dims: int = 2
) -> Value:
    """(3x3 conv -> BN -> ReLU) x 2: conv1/bn1/relu1, conv2/bn2/relu2."""
    conv = spatial_op("conv", dims)
    y = x
    for i, width in ((1, mid_channels or out_channels), (2, out_channels)):
        y = b.node(
            conv, y, name=f"conv{i}", out_channels=width, kernel_size=3, padding=1, bias=False
        )
        y = b.node("batchnorm", y, name=f"bn{i}")
        y = b.node("relu", y, name=f"relu{i}")
    return y


@builtin
def residual_unit(
    b: Builder, x: Value, *, out_channels: int, stride: int = 1, dims: int = 3
) -> Value:
    """conv1/bn1/relu1 -> conv2/bn2, plus x (or `shortcut.conv`/`shortcut.bn` when the width or
    the stride changes), -> relu."""
    conv = spatial_op("conv", dims)
    y = b.node(conv, x, name="conv1", out_channels=out_channels, kernel_size=3, stride=stride,
               padding=1, bias=False)  # fmt: skip
    y = b.node("batchnorm", y, name="bn1")
    y = b.node("relu", y, name="relu1")
    y = b.node(
        conv, y, name="conv2", out_channels=out_channels, kernel_size=3, padding=1, bias=False
    )
    y = b.node("batchnorm", y, name="bn2")
    shortcut = x
    if stride != 1 or x.channels != out_channels:
        shortcut = b.node(conv, x, name="shortcut.conv", out_channels=out_channels,
                          kernel_size=1, stride=stride, bias=False)  # fmt: skip
        shortcut = b.node("batchnorm", shortcut, name="shortcut.bn")
    y = b.node("add", y, shortcut, name="add")
    return b.node("relu", y, name="relu")


@builtin
def unet_up(
    b: Builder,
    x: Value,
    skip: Value,
    *,
    out_channels: int,
    unit: str = "double_conv",
    dims: int = 2,
    align_corners: bool = True,
) -> Value:
    """up (to skip's size) -> cat [skip, up] -> `unit` block named `conv`."""
    spatial_op("conv", dims)  # refuses other ranks before anything is built
    size = list(skip.shape[2:])
    if dims == 2:
        up = b.node("upsample", x, name="up", size=size, mode="bilinear",
                    align_corners=align_corners)  # fmt: skip
    else:
        up = b.node("upsample3d", x, name="up", size=size, mode="trilinear",
                    align_corners=align_corners)  # fmt: skip
    y = b.node("concat", skip, up, name="cat")
    return b.block(unit, y, name="conv", out_channels=out_channels, dims=dims)
