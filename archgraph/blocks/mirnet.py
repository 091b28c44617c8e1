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
- `residual_downsample` (MIRNet's ResidualDownSample): top branch conv1x1 -> PReLU -> conv3x3 ->
  PReLU -> anti-aliased blur pool (binomial 3x3, reflect padding, stride 2) -> conv1x1 to 2C;
  bottom branch blur pool -> conv1x1 to 2C; summed. `residual_upsample` (ResidualUpSample): top
  conv1x1 -> PReLU -> 3x3 transposed conv, stride 2 -> PReLU -> conv1x1 to C/2; bottom bilinear x2
  -> conv1x1 to C/2; summed. Their convs have no bias, as in MIRNet; names follow its `top.i` and
  `bot.i` (the blur pools hold no tensors: MIRNet's `filt` buffer is a constant here).

The activations are MIRNet's: one-slope PReLU (nn.PReLU()) in the DAU body, SKFF's squeeze and the
resampling branches; ReLU inside the channel attention, as MIRNet's `ca_layer` has it.
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
    z = b.node("prelu", z, name="act")
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
    m = b.node("prelu", m, name="body.1")
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


@builtin
def residual_downsample(b: Builder, x: Value) -> Value:
    """MIRNet's ResidualDownSample over NCHW: half the size, twice the channels (see the module
    docstring)."""
    c = x.shape[1]
    with b.scope("top"):
        t = _conv(b, x, "0", c, 1, bias=False)
        t = b.node("prelu", t, name="1")
        t = _conv(b, t, "2", c, 3, bias=False)
        t = b.node("prelu", t, name="3")
        t = b.node("blur_pool2d", t, name="4", filt_size=3, stride=2)
        t = _conv(b, t, "5", 2 * c, 1, bias=False)
    with b.scope("bot"):
        d = b.node("blur_pool2d", x, name="0", filt_size=3, stride=2)
        d = _conv(b, d, "1", 2 * c, 1, bias=False)
    return b.node("add", t, d, name="sum")


@builtin
def residual_upsample(b: Builder, x: Value) -> Value:
    """MIRNet's ResidualUpSample over NCHW: twice the size, half the channels (see the module
    docstring)."""
    c = x.shape[1]
    with b.scope("top"):
        t = _conv(b, x, "0", c, 1, bias=False)
        t = b.node("prelu", t, name="1")
        t = b.node(
            "conv_transpose2d",
            t,
            name="2",
            out_channels=c,
            kernel_size=3,
            stride=2,
            padding=1,
            output_padding=1,
            bias=False,
        )
        t = b.node("prelu", t, name="3")
        t = _conv(b, t, "4", c // 2, 1, bias=False)
    with b.scope("bot"):
        u = b.node("upsample", x, name="0", scale_factor=2.0, mode="bilinear")
        u = _conv(b, u, "1", c // 2, 1, bias=False)
    return b.node("add", t, u, name="sum")


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
    mid = b.block("residual_downsample", top, name="down2")
    low = b.block("residual_downsample", mid, name="down4")
    for r in range(2):
        top = b.block("dual_attention", top, name=f"dau_top.{r}", reduction=reduction)
        mid = b.block("dual_attention", mid, name=f"dau_mid.{r}", reduction=reduction)
        low = b.block("dual_attention", low, name=f"dau_low.{r}", reduction=reduction)
        up = b.block("residual_upsample", low, name=f"up32.{r}")
        mid = b.block("skff", mid, up, name=f"skff_mid.{r}")
        up = b.block("residual_upsample", mid, name=f"up21.{r}")
        top = b.block("skff", top, up, name=f"skff_top.{r}")
    y = _conv(b, top, "conv_out", x.shape[1], 3)
    return b.node("add", x, y, name="residual")
