"""DenseNet-BC blocks (Huang et al. 2017) with torchvision's layout and names, so a torchvision
densenet state_dict loads strictly.

`dense_layer` takes every feature map produced so far in its block, concatenates them (`concat`;
a lone input is used as it is) and applies the bottleneck norm1 -> relu1 -> 1x1 conv1 (to
bn_size * growth_rate channels) -> norm2 -> relu2 -> 3x3 conv2 (to growth_rate channels).
`dense_block` runs `layers` of them, `denselayer1..layers` as torchvision numbers them, and
concatenates the block input with all their outputs. `dense_transition` halves the width
(by `compression`) and the resolution: norm -> relu -> 1x1 conv -> 2x2/2 average pool.
`dims: 3` builds the same blocks over NCDHW volumes (conv3d, avgpool3d), as the 3-D dense path
of H-DenseUNet (Li et al. 2018) does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.dims import spatial_op
from archgraph.blocks.registry import builtin
from archgraph.errors import SpecError

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


@builtin
def dense_layer(
    b: Builder, *features: Value, growth_rate: int, bn_size: int = 4, dims: int = 2
) -> Value:
    """DenseNet-BC layer over the concatenation of `features`: BN-ReLU-1x1, BN-ReLU-3x3."""
    conv = spatial_op("conv", dims)
    if not features:
        raise SpecError("a dense_layer needs at least one input", expected=">= 1", found="0")
    x = features[0] if len(features) == 1 else b.node("concat", *features, name="concat")
    y = b.node("batchnorm", x, name="norm1")
    y = b.node("relu", y, name="relu1")
    y = b.node(conv, y, name="conv1", out_channels=bn_size * growth_rate, kernel_size=1, bias=False)
    y = b.node("batchnorm", y, name="norm2")
    y = b.node("relu", y, name="relu2")
    return b.node(
        conv, y, name="conv2", out_channels=growth_rate, kernel_size=3, padding=1, bias=False
    )


@builtin
def dense_block(
    b: Builder, x: Value, *, layers: int, growth_rate: int = 32, bn_size: int = 4, dims: int = 2
) -> Value:
    """`layers` dense layers, each fed by all earlier features; output: all of them concatenated
    (x.channels + layers * growth_rate channels)."""
    features = [x]
    for i in range(1, layers + 1):
        features.append(
            b.block(
                "dense_layer",
                *features,
                name=f"denselayer{i}",
                growth_rate=growth_rate,
                bn_size=bn_size,
                dims=dims,
            )
        )
    return b.node("concat", *features, name="concat")


@builtin
def dense_transition(b: Builder, x: Value, *, compression: float = 0.5, dims: int = 2) -> Value:
    """Transition between dense blocks: norm -> relu -> 1x1 conv to int(channels * compression)
    -> 2x2 stride-2 average pool."""
    out = int(x.channels * compression)
    if out < 1:
        raise SpecError(
            "dense_transition would leave no channels",
            expected="compression with int(channels * compression) >= 1",
            found=f"{x.channels} channels * {compression}",
        )
    y = b.node("batchnorm", x, name="norm")
    y = b.node("relu", y, name="relu")
    y = b.node(
        spatial_op("conv", dims), y, name="conv", out_channels=out, kernel_size=1, bias=False
    )
    return b.node(spatial_op("avgpool", dims), y, name="pool", kernel_size=2, stride=2)
