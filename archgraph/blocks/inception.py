"""Inception-ResNet-v2 blocks (Szegedy et al. 2016) with timm's layout and names.

Every convolution is the basic unit `conv` (no bias) -> `bn` (eps 1e-3, as the TensorFlow port
uses) -> `relu`. A branch of several units is numbered like an nn.Sequential (`branch1.0`,
`branch1.1`, ...), so node ids reproduce timm's module paths and a timm `inception_resnet_v2`
state_dict loads strictly.

Block35 / Block17 / Block8 are the residual Inception blocks A / B / C: their branches are
concatenated, projected back to the input width by a 1x1 conv with bias (`conv2d`), scaled by a
constant (`scale`) and added to the input. Mixed_5b is the stem's last Inception block;
Mixed_6a / Mixed_7a are the reductions A / B. Output widths are timm's; input widths come from
the input, and each residual block projects back to its input's width.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value

BN_EPS = 1e-3

# One basic unit of a branch: (out_channels, kernel_size, stride, padding).
Size = int | tuple[int, int]
Unit = tuple[int, Size, int, Size]


@builtin
def basic_conv2d(
    b: Builder,
    x: Value,
    *,
    out_channels: int,
    kernel_size: Size,
    stride: Size = 1,
    padding: Size = 0,
    eps: float = BN_EPS,
) -> Value:
    """conv (no bias) -> batchnorm -> relu, named `conv`, `bn`, `relu` (timm's BasicConv2d)."""
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
    y = b.node("batchnorm", y, name="bn", eps=eps)
    return b.node("relu", y, name="relu")


def _unit(b: Builder, x: Value, name: str, unit: Unit) -> Value:
    out, k, stride, padding = unit
    with b.scope(name):
        return basic_conv2d(b, x, out_channels=out, kernel_size=k, stride=stride, padding=padding)


def _chain(b: Builder, x: Value, name: str, units: list[Unit]) -> Value:
    """Units in sequence, numbered `name.0`, `name.1`, ... like an nn.Sequential."""
    for i, unit in enumerate(units):
        x = _unit(b, x, f"{name}.{i}", unit)
    return x


def _scaled_residual(
    b: Builder, x: Value, branches: list[Value], scale: float, relu: str | None
) -> Value:
    """concat -> 1x1 conv back to x's width -> * scale -> + x [-> relu named `relu`].

    A scale of exactly 1.0 adds no node: multiplying by 1.0 changes no value.
    """
    y = b.node("concat", *branches, name="concat")
    y = b.node("conv2d", y, name="conv2d", out_channels=x.channels, kernel_size=1)
    if scale != 1.0:
        y = b.node("scale", y, name="scale", factor=scale)
    y = b.node("add", y, x, name="add")
    return b.node("relu", y, name=relu) if relu else y


@builtin
def mixed_5b(b: Builder, x: Value) -> Value:
    """Stem Inception block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1, concatenated (320 channels)."""
    x0 = _unit(b, x, "branch0", (96, 1, 1, 0))
    x1 = _chain(b, x, "branch1", [(48, 1, 1, 0), (64, 5, 1, 2)])
    x2 = _chain(b, x, "branch2", [(64, 1, 1, 0), (96, 3, 1, 1), (96, 3, 1, 1)])
    pooled = b.node(
        "avgpool2d",
        x,
        name="branch3.0",
        kernel_size=3,
        stride=1,
        padding=1,
        count_include_pad=False,
    )
    x3 = _unit(b, pooled, "branch3.1", (64, 1, 1, 0))
    return b.node("concat", x0, x1, x2, x3, name="concat")


@builtin
def block35(b: Builder, x: Value, *, scale: float = 1.0) -> Value:
    """Inception-ResNet-A (35x35 grid): 1x1 | 1x1-3x3 | 1x1-3x3-3x3, scaled residual, ReLU `act`."""
    x0 = _unit(b, x, "branch0", (32, 1, 1, 0))
    x1 = _chain(b, x, "branch1", [(32, 1, 1, 0), (32, 3, 1, 1)])
    x2 = _chain(b, x, "branch2", [(32, 1, 1, 0), (48, 3, 1, 1), (64, 3, 1, 1)])
    return _scaled_residual(b, x, [x0, x1, x2], scale, "act")


@builtin
def mixed_6a(b: Builder, x: Value) -> Value:
    """Reduction-A (35 -> 17): 3x3/2 | 1x1-3x3-3x3/2 | maxpool 3x3/2, concatenated."""
    x0 = _unit(b, x, "branch0", (384, 3, 2, 0))
    x1 = _chain(b, x, "branch1", [(256, 1, 1, 0), (256, 3, 1, 1), (384, 3, 2, 0)])
    x2 = b.node("maxpool2d", x, name="branch2", kernel_size=3, stride=2)
    return b.node("concat", x0, x1, x2, name="concat")


@builtin
def block17(b: Builder, x: Value, *, scale: float = 1.0) -> Value:
    """Inception-ResNet-B (17x17 grid): 1x1 | 1x1-1x7-7x1, scaled residual, ReLU `act`."""
    x0 = _unit(b, x, "branch0", (192, 1, 1, 0))
    x1 = _chain(
        b, x, "branch1", [(128, 1, 1, 0), (160, (1, 7), 1, (0, 3)), (192, (7, 1), 1, (3, 0))]
    )
    return _scaled_residual(b, x, [x0, x1], scale, "act")


@builtin
def mixed_7a(b: Builder, x: Value) -> Value:
    """Reduction-B (17 -> 8): 1x1-3x3/2 | 1x1-3x3/2 | 1x1-3x3-3x3/2 | maxpool 3x3/2, concatenated."""
    x0 = _chain(b, x, "branch0", [(256, 1, 1, 0), (384, 3, 2, 0)])
    x1 = _chain(b, x, "branch1", [(256, 1, 1, 0), (288, 3, 2, 0)])
    x2 = _chain(b, x, "branch2", [(256, 1, 1, 0), (288, 3, 1, 1), (320, 3, 2, 0)])
    x3 = b.node("maxpool2d", x, name="branch3", kernel_size=3, stride=2)
    return b.node("concat", x0, x1, x2, x3, name="concat")


@builtin
def block8(b: Builder, x: Value, *, scale: float = 1.0, no_relu: bool = False) -> Value:
    """Inception-ResNet-C (8x8 grid): 1x1 | 1x1-1x3-3x1, scaled residual, ReLU `relu` unless no_relu."""
    x0 = _unit(b, x, "branch0", (192, 1, 1, 0))
    x1 = _chain(
        b, x, "branch1", [(192, 1, 1, 0), (224, (1, 3), 1, (0, 1)), (256, (3, 1), 1, (1, 0))]
    )
    return _scaled_residual(b, x, [x0, x1], scale, None if no_relu else "relu")
