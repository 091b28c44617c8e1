"""Channel attention by squeeze-and-excitation, with timm's layout and names.

`squeeze_excite` (Hu et al. 2018; timm's SEModule, torchvision's SqueezeExcitation): global
average pool, 1x1 conv `fc1` down to a reduced width, activation `act` (ReLU; `act: silu` for
EfficientNet's), 1x1 conv `fc2` back up, `gate` (sigmoid; `hardsigmoid` for MobileNetV3's), and
the input multiplied by the gate. `effective_se` (eSE, Lee & Park 2020, CenterMask / VoVNetV2; timm's
EffectiveSEModule) keeps the full width: global average pool, one 1x1 conv `fc` with bias,
hard-sigmoid `gate`, multiply. The pool and the product are the parameter-free nodes `pool` and
`scale`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archgraph.blocks.registry import builtin

if TYPE_CHECKING:
    from archgraph.builder import Builder, Value


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.0) -> int:
    """timm's channel rounding: the nearest multiple of `divisor` (at least `divisor`), one step
    up if rounding lost more than `round_limit` of the value. SEModule uses round_limit 0."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


def _gated(b: Builder, x: Value, gate_logits: Value, gate: str) -> Value:
    g = b.node(gate, gate_logits, name="gate")
    return b.node("mul", x, g, name="scale")


@builtin
def squeeze_excite(
    b: Builder,
    x: Value,
    *,
    rd_ratio: float = 1.0 / 16,
    rd_channels: int | None = None,
    rd_divisor: int = 8,
    act: str = "relu",
    gate: str = "sigmoid",
) -> Value:
    """Squeeze-excitation: pool -> `fc1` (reduce) -> `act` -> `fc2` -> `gate` -> x * gate."""
    reduced = rd_channels or make_divisible(x.channels * rd_ratio, rd_divisor)
    s = b.node("adaptive_avgpool2d", x, name="pool", output_size=1)
    s = b.node("conv2d", s, name="fc1", out_channels=reduced, kernel_size=1)
    s = b.node(act, s, name="act")
    s = b.node("conv2d", s, name="fc2", out_channels=x.channels, kernel_size=1)
    return _gated(b, x, s, gate)


@builtin
def effective_se(b: Builder, x: Value, *, gate: str = "hardsigmoid") -> Value:
    """Effective SE (eSE): pool -> one full-width 1x1 conv `fc` with bias -> `gate` -> x * gate."""
    s = b.node("adaptive_avgpool2d", x, name="pool", output_size=1)
    s = b.node("conv2d", s, name="fc", out_channels=x.channels, kernel_size=1)
    return _gated(b, x, s, gate)
