"""A hypernetwork-generated convolution (Ha et al. 2017; MIP, Ortiz et al. 2023).

`hyper_conv(x[, context])` builds, inside its scope:
  embedding   a `learned_embedding` [1, embed_dim] (only without a context input; a context is
              e.g. a task embedding [N, t] or [1, t] fed to the network)
  hyper.encode  `sphere_encode` (MIP: the generator's input at constant magnitude; mip only)
  hyper.fc1 -> hyper.act (ReLU) -> hyper.fc2   the generator MLP, out * in * k * k outputs
  conv        `hyper_conv2d` over x with the generated weight (plus, with mip, its learned
              static weight `conv.weight`: the generated weight is an additive change)
so the convolution's weight is a value computed by the graph, not a leaf parameter, and the
profiler counts the generator's nodes and the convolution separately.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin
from archgraph.errors import SpecError

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


@builtin
def hyper_conv(
    b: Builder,
    x: Value,
    *context: Value,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int | None = None,
    embed_dim: int = 8,
    hidden: int = 32,
    mip: bool = True,
    bias: bool = False,
) -> Value:
    """Convolution whose weight a small MLP generates from a learned embedding or a context."""
    if len(context) > 1:
        raise SpecError(
            "hyper_conv takes one context input at most",
            expected="x, or x and a context (e.g. a task embedding)",
            found=f"{1 + len(context)} inputs",
        )
    z = context[0] if context else b.node("learned_embedding", name="embedding", dim=embed_dim)
    numel = out_channels * x.channels * kernel_size * kernel_size
    with b.scope("hyper"):
        if mip:
            z = b.node("sphere_encode", z, name="encode")
        h = b.node("linear", z, name="fc1", out_features=hidden)
        h = b.node("relu", h, name="act")
        w = b.node("linear", h, name="fc2", out_features=numel)
    return b.node(
        "hyper_conv2d",
        x,
        w,
        name="conv",
        out_channels=out_channels,
        kernel_size=kernel_size,
        stride=stride,
        padding=kernel_size // 2 if padding is None else padding,
        bias=bias,
        mip=mip,
    )
