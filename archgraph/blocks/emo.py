"""EMOv2-style mobile blocks (Zhang et al. 2024, "EMOv2: Pushing 5M Vision Model Frontier"; the
iRMB of EMO, Zhang et al. 2023) over NCHW maps.

`i2rmb` is the improved inverted residual mobile block, one residual per block (the Meta Mobile
Block: expand, mix, project):

    y = BN(x)                                   `norm`
    v = SiLU(conv1x1(y))  (C -> E = lambda C)   `v.conv`, `v.act`
    v = window attention, Q, K from y, V = v    `attn` (the inverted_window_attention op), when
                                                num_heads > 0; EMOv2's spanning attention (close
                                                and remote windows, one set of weights) by default
    z = SiLU(BN(dwconv k x k, stride s (v)))    `conv_local.conv`, `.bn`, `.act`; plus v when the
                                                block keeps its shape (the inner skip)
    out = gamma * conv1x1(z) (E -> C_out)  [+ x] `proj`; EMOv2's layer scale `ls.gamma` (per
                                                channel, from `layer_scale`, 1e-6; 0: none) on
                                                every block; the residual when stride 1, C_out = C

Queries and keys come from the block input by a 1x1 conv without bias, values are the expanded
features (EMO's EW-MHSA; span: false gives EMO's iRMB attention); a map that is not whole windows
is zero-padded to them, attended and cropped, as EMOv2 does (inside the attention op). Not
reproduced: EMOv2's stochastic depth (the identity in eval). `i2rmb_stage` downsamples with a
stride-2 block (no attention, no residual) and stacks depth - 1 shape-keeping blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


@builtin
def i2rmb(
    b: Builder,
    x: Value,
    *,
    out_channels: int | None = None,
    expand_ratio: float = 4.0,
    stride: int = 1,
    num_heads: int = 0,
    window_size: int = 7,
    span: bool = True,
    kernel_size: int = 3,
    layer_scale: float = 1e-6,
) -> Value:
    """Improved inverted residual mobile block over NCHW (see the module docstring)."""
    c = x.shape[1]
    out = out_channels or c
    e = int(c * expand_ratio)
    skip = stride == 1 and out == c
    y = b.node("batchnorm", x, name="norm")
    v = b.node("conv2d", y, name="v.conv", out_channels=e, kernel_size=1, bias=False)
    v = b.node("silu", v, name="v.act")
    if num_heads:
        v = b.node(
            "inverted_window_attention",
            y,
            v,
            name="attn",
            num_heads=num_heads,
            window_size=window_size,
            qk_bias=False,
            span=span,
        )
    with b.scope("conv_local"):
        z = b.node(
            "conv2d",
            v,
            name="conv",
            out_channels=e,
            kernel_size=kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=e,
            bias=False,
        )
        z = b.node("batchnorm", z, name="bn")
        z = b.node("silu", z, name="act")
    if skip:
        z = b.node("add", v, z, name="local_skip")
    z = b.node("conv2d", z, name="proj", out_channels=out, kernel_size=1, bias=False)
    if layer_scale > 0:  # EMOv2's LayerScale2D `ls`, whose tensor is `ls.gamma`
        z = b.node("layer_scale", z, name="ls.gamma", keepdims=True, init_value=layer_scale)
    return b.node("add", x, z, name="residual") if skip else z


@builtin
def i2rmb_stage(
    b: Builder,
    x: Value,
    *,
    dim: int,
    depth: int,
    expand_ratio: float = 4.0,
    num_heads: int = 0,
    window_size: int = 7,
    span: bool = True,
    layer_scale: float = 1e-6,
) -> Value:
    """A stride-2 block to `dim` channels, then depth - 1 blocks (attention when num_heads > 0)."""
    x = b.block(
        "i2rmb",
        x,
        name="0",
        out_channels=dim,
        expand_ratio=expand_ratio,
        stride=2,
        layer_scale=layer_scale,
    )
    for i in range(1, depth):
        x = b.block(
            "i2rmb",
            x,
            name=str(i),
            expand_ratio=expand_ratio,
            num_heads=num_heads,
            window_size=window_size,
            span=span,
            layer_scale=layer_scale,
        )
    return x
