"""Feature pyramid necks over backbone feature maps C_l (stride 2^l), finest level first.

`fpn` is the Feature Pyramid Network (Lin et al. 2017) with torchvision's layout and names
(torchvision.ops.FeaturePyramidNetwork with LastLevelMaxPool): a 1x1 lateral conv per level
(`inner_blocks.<i>.0`), a top-down path that upsamples the coarser merged map (nearest) and adds
it to the lateral, and a 3x3 output conv per level (`layer_blocks.<i>.0`); `pool` subsamples the
coarsest output by 2 (P6). torchvision's FPN state_dict loads into the block's scope as it is.

`densefpn` is a dense feature pyramid after CATNet's DenseFPN (2021): every output level fuses
*all* backbone levels. Each C_l gets a 1x1 lateral conv to `channels` (`lateral<l>`); for output level t,
every lateral is resized to level t (`to<t>.from<s>`: nearest upsampling from coarser levels,
kernel = stride = 2^(t-s) max pooling from finer ones), the resized maps are re-weighted and
summed by learned non-negative weights (`fuse<t>`, the `weighted_sum` op: BiFPN's fast normalized
fusion), and a 3x3 conv gives P_t (`p<t>`); `p<last+1>` subsamples the coarsest output by 2.

Both blocks return their last output (P6, or the coarsest level without `extra_pool`); the other
levels are nodes of the block's scope, e.g. `neck.p2` (list them under `outputs:` in a spec).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin
from archgraph.errors import SpecError

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


def _check_pyramid(features: tuple[Value, ...], block: str, *, halving: bool) -> None:
    """At least two NCHW maps; with `halving`, each level half the size of the one before
    (rounded up, as strided convs with padding make it), which resizing by 2^k relies on."""
    if len(features) < 2:
        raise SpecError(
            f"a {block} needs at least two feature maps",
            expected="backbone features [C2, C3, ...], finest first",
            found=f"{len(features)} input(s)",
        )
    for i, f in enumerate(features):
        if len(f.shape) != 4:
            raise SpecError(
                f"{block} input {i} is not a feature map",
                expected="an NCHW tensor",
                found=f"{list(f.shape)} from '{f.id}'",
            )
    if not halving:
        return
    for prev, f in itertools.pairwise(features):
        half = [-(-d // 2) for d in prev.shape[2:]]
        if list(f.shape[2:]) != half:
            raise SpecError(
                f"{block} levels must halve in size from one to the next",
                expected=f"{half} (half of {list(prev.shape[2:])} from '{prev.id}', rounded up)",
                found=f"{list(f.shape[2:])} from '{f.id}'",
                hint="give the feature maps finest first, one stride-2 stage apart",
            )


def _conv(b: Builder, x: Value, name: str, channels: int, k: int) -> Value:
    return b.node("conv2d", x, name=name, out_channels=channels, kernel_size=k, padding=k // 2)


def _subsample(b: Builder, x: Value, name: str) -> Value:
    """The extra level: every second pixel (torchvision's LastLevelMaxPool, P6 of the paper)."""
    return b.node("maxpool2d", x, name=name, kernel_size=1, stride=2)


@builtin
def fpn(b: Builder, *features: Value, channels: int = 256, extra_pool: bool = True) -> Value:
    """Feature Pyramid Network over C2..C5 (finest first), torchvision's names; returns the last level."""
    _check_pyramid(features, "fpn", halving=False)
    top = len(features) - 1
    merged = _conv(b, features[top], f"inner_blocks.{top}.0", channels, 1)
    out = _conv(b, merged, f"layer_blocks.{top}.0", channels, 3)
    for i in range(top - 1, -1, -1):
        lateral = _conv(b, features[i], f"inner_blocks.{i}.0", channels, 1)
        up = b.node("upsample", merged, name=f"top_down.{i}", size=lateral.shape[2:])
        merged = b.node("add", lateral, up, name=f"merge.{i}")
        _conv(b, merged, f"layer_blocks.{i}.0", channels, 3)
    return _subsample(b, out, "pool") if extra_pool else out


@builtin
def densefpn(
    b: Builder,
    *features: Value,
    channels: int = 256,
    extra_pool: bool = True,
    first_level: int = 2,
) -> Value:
    """Dense feature pyramid (CATNet): each P_l fuses all levels with learned weights; returns the last level."""
    _check_pyramid(features, "densefpn", halving=True)
    levels = range(first_level, first_level + len(features))
    laterals = {
        level: _conv(b, f, f"lateral{level}", channels, 1)
        for level, f in zip(levels, features, strict=True)
    }
    for t in levels:
        resized = []
        for s in levels:
            if s == t:
                resized.append(laterals[s])
            elif s > t:
                size = laterals[t].shape[2:]
                resized.append(b.node("upsample", laterals[s], name=f"to{t}.from{s}", size=size))
            else:
                k = 2 ** (t - s)
                resized.append(
                    b.node(
                        "maxpool2d",
                        laterals[s],
                        name=f"to{t}.from{s}",
                        kernel_size=k,
                        stride=k,
                        ceil_mode=True,
                    )
                )
        fused = b.node("weighted_sum", *resized, name=f"fuse{t}")
        out = _conv(b, fused, f"p{t}", channels, 3)
    return _subsample(b, out, f"p{levels[-1] + 1}") if extra_pool else out
