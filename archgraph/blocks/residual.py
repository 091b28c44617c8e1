"""Residual blocks (He et al. 2016) with torchvision's layout and names:
conv1/bn1 ... convN/bnN, an optional `downsample.0` (1x1 conv) / `downsample.1` (batchnorm)
projection shortcut, the residual add and the final ReLU."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


def conv_bn(
    b: Builder,
    x: Value,
    conv: str,
    bn: str,
    out: int,
    k: int,
    stride: int = 1,
    groups: int = 1,
    relu: str | None = None,
) -> Value:
    """conv (no bias) -> batchnorm [-> relu], the unit every torchvision CNN is made of."""
    y = b.node(
        "conv2d",
        x,
        name=conv,
        out_channels=out,
        kernel_size=k,
        stride=stride,
        padding=k // 2,
        groups=groups,
        bias=False,
    )
    y = b.node("batchnorm", y, name=bn)
    return b.node("relu", y, name=relu) if relu else y


def _shortcut(b: Builder, x: Value, out: int, stride: int) -> Value:
    if stride == 1 and x.channels == out:
        return x
    return conv_bn(b, x, "downsample.0", "downsample.1", out, 1, stride)


@builtin
def basic(b: Builder, x: Value, *, planes: int, stride: int = 1) -> Value:
    """ResNet basic block: two 3x3 convs and a shortcut (ResNet-18/34)."""
    y = conv_bn(b, x, "conv1", "bn1", planes, 3, stride, relu="relu")
    y = conv_bn(b, y, "conv2", "bn2", planes, 3)
    y = b.node("add", y, _shortcut(b, x, planes, stride), name="add")
    return b.node("relu", y, name="relu_out")


@builtin
def bottleneck(
    b: Builder,
    x: Value,
    *,
    planes: int,
    stride: int = 1,
    groups: int = 1,
    base_width: int = 64,
    expansion: int = 4,
) -> Value:
    """ResNet bottleneck: 1x1 reduce, 3x3 (stride here, as torchvision's v1.5), 1x1 expand."""
    width = planes * base_width // 64 * groups
    y = conv_bn(b, x, "conv1", "bn1", width, 1, relu="relu")
    y = conv_bn(b, y, "conv2", "bn2", width, 3, stride, groups, relu="relu_1")
    y = conv_bn(b, y, "conv3", "bn3", planes * expansion, 1)
    y = b.node("add", y, _shortcut(b, x, planes * expansion, stride), name="add")
    return b.node("relu", y, name="relu_out")
