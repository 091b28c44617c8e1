"""MIRNet blocks (Zamir et al. 2020, "Learning Enriched Features for Real Image Restoration and
Enhancement"; the multi-scale wiring of MIRNet-v2, Zamir et al. 2022) over NCHW maps.

- `skff` (selective kernel feature fusion): L = sum of the streams; s = GAP(L);
  z = act(conv1x1(s)) down to d = max(C / reduction, 4) channels; one conv1x1 per stream back to
  C; softmax over the streams per channel; output sum_i a_i * L_i.
- `dual_attention` (dual attention unit, DAU): M = conv3x3 -> act -> conv3x3 of x; spatial
  attention: sigmoid(conv5x5(channel max ++ channel mean of M)) * M; channel attention (SE):
  sigmoid(conv1x1(act(conv1x1(GAP(M))))) * M; both concatenated, conv1x1 back to C, plus x.
- `mrb` (multi-scale residual block): three streams at full, 1/2 and 1/4 resolution (widths C,
  2C, 4C), each a DAU; the coarser streams flow up through SKFF into the finer ones; DAUs and the
  same top-down SKFF exchange again; a conv3x3 on the full-resolution stream plus the input.
  Downsampling is a 2x2 average pool and a 1x1 conv doubling the width (MIRNet's antialiased
  downsampling blurs with a fixed kernel instead of the box); upsampling a 1x1 conv halving the
  width and bilinear x2 resizing, as in MIRNet. The activations are ReLU (MIRNet uses PReLU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin
from archgraph.errors import SpecError

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


def _conv(b: Builder, x: Value, name: str, out: int, k: int, bias: bool = True) -> Value:
    return b.node(
        "conv2d", x, name=name, out_channels=out, kernel_size=k, padding=k // 2, bias=bias
    )


@builtin
def skff(b: Builder, *streams: Value, reduction: int = 8) -> Value:
    """Selective kernel feature fusion of same-shape NCHW streams (see the module docstring)."""
    if len(streams) < 2 or any(s.type.shape != streams[0].type.shape for s in streams):
        raise SpecError(
            "skff fuses two or more streams of one shape",
            expected=f"at least 2 inputs shaped like {streams[0].type}" if streams else "2 inputs",
            found=", ".join(str(s.type) for s in streams),
            hint="resample the streams to one resolution and width first",
        )
    n, c = len(streams), streams[0].shape[1]
    total = streams[0]
    for i, s in enumerate(streams[1:], 1):
        total = b.node("add", total, s, name=f"sum{i}")
    z = b.node("adaptive_avgpool2d", total, name="pool", output_size=1)
    z = _conv(b, z, "squeeze", max(c // reduction, 4), 1, bias=False)
    z = b.node("relu", z, name="act")
    logits = [_conv(b, z, f"fcs.{i}", c, 1, bias=False) for i in range(n)]
    a = b.node("concat", *logits, name="logits", dim=1)
    a = b.node("reshape", a, name="per_stream", shape=[n, c, 1, 1])
    a = b.node("softmax", a, name="select", dim=1)
    out = None
    for i, s in enumerate(streams):
        w = b.node("select", a, name=f"weight{i}", dim=1, index=i)
        y = b.node("mul", s, w, name=f"scaled{i}")
        out = y if out is None else b.node("add", out, y, name=f"fused{i}")
    assert out is not None
    return out


@builtin
def dual_attention(b: Builder, x: Value, *, reduction: int = 8, kernel_size: int = 5) -> Value:
    """Dual attention unit over NCHW: spatial and channel attention on a conv body, fused by a
    1x1 conv, plus the input."""
    c = x.shape[1]
    m = _conv(b, x, "body.0", c, 3)
    m = b.node("relu", m, name="body.1")
    m = _conv(b, m, "body.2", c, 3)
    with b.scope("sa"):
        s = b.node("channel_pool", m, name="compress")
        s = _conv(b, s, "conv", 1, kernel_size, bias=False)
        s = b.node("sigmoid", s, name="gate")
        sa = b.node("mul", m, s, name="scale")
    with b.scope("ca"):
        g = b.node("adaptive_avgpool2d", m, name="pool", output_size=1)
        g = _conv(b, g, "fc1", max(c // reduction, 1), 1)
        g = b.node("relu", g, name="act")
        g = _conv(b, g, "fc2", c, 1)
        g = b.node("sigmoid", g, name="gate")
        ca = b.node("mul", m, g, name="scale")
    y = b.node("concat", sa, ca, name="cat", dim=1)
    y = _conv(b, y, "conv1x1", c, 1)
    return b.node("add", x, y, name="residual")


def _down(b: Builder, x: Value, name: str) -> Value:
    with b.scope(name):
        y = b.node("avgpool2d", x, name="pool", kernel_size=2, stride=2)
        return _conv(b, y, "conv", 2 * x.shape[1], 1, bias=False)


def _up(b: Builder, x: Value, name: str) -> Value:
    with b.scope(name):
        y = _conv(b, x, "conv", x.shape[1] // 2, 1, bias=False)
        return b.node("upsample", y, name="resize", scale_factor=2.0, mode="bilinear")


@builtin
def mrb(b: Builder, x: Value, *, reduction: int = 8) -> Value:
    """Multi-scale residual block over NCHW (H and W divisible by 4): three streams of dual
    attention units exchanging information top-down through SKFF (see the module docstring)."""
    if x.type.rank != 4 or x.shape[2] % 4 or x.shape[3] % 4:
        raise SpecError(
            "a multi-scale residual block takes NCHW maps whose H and W divide by 4",
            expected="[N, C, H, W] with H and W multiples of 4",
            found=str(x.type),
            hint="choose an image size divisible by 4",
        )
    top = x
    mid = _down(b, top, "down2")
    low = _down(b, mid, "down4")
    for r in range(2):
        top = b.block("dual_attention", top, name=f"dau_top.{r}", reduction=reduction)
        mid = b.block("dual_attention", mid, name=f"dau_mid.{r}", reduction=reduction)
        low = b.block("dual_attention", low, name=f"dau_low.{r}", reduction=reduction)
        mid = b.block("skff", mid, _up(b, low, f"up32.{r}"), name=f"skff_mid.{r}")
        top = b.block("skff", top, _up(b, mid, f"up21.{r}"), name=f"skff_top.{r}")
    y = _conv(b, top, "conv_out", x.shape[1], 3)
    return b.node("add", x, y, name="residual")
