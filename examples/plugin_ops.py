"""A plugin: a custom op and a custom block, registered in Python, used by a YAML spec.

Specs are data and can never import code, so custom ops and blocks come from plugins that the
person running archgraph names explicitly:

    bash scripts/dev archgraph validate examples/plugin_spec.yaml --plugin examples/plugin_ops.py
    bash scripts/dev archgraph compile examples/plugin_spec.yaml --plugin examples/plugin_ops.py --profile

or, in Python, `archgraph.plugins.load_plugin("examples/plugin_ops.py")` (or a plain `import` of
the module) before `archgraph.load(...)`. A plugin module is a module name importable from the
current directory or a path to a .py file; importing it registers what it defines.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import fx

import archgraph
from archgraph import Builder, Value
from archgraph.ir.types import TensorType
from archgraph.ops.registry import FLOAT, PASS_ANY, Arg, Emitter, OpDef, explicit, pointwise_cost


def swish_beta(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """x * sigmoid(beta * x): SiLU with a slope (Ramachandran et al., 2017)."""
    return x * torch.sigmoid(beta * x)


def _same_type(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return ins[0]


def _lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(swish_beta, (xs[0],), explicit(args, SWISH_BETA.args))


# Everything about the op in one place: arguments, shape rule, cost (4 flops an element: a
# multiply, the sigmoid's exp, add and divide, then the product), lowering, channel rule.
SWISH_BETA = archgraph.register_op(
    OpDef(
        name="swish_beta",
        doc="x * sigmoid(beta * x) (plugin example)",
        args={"beta": Arg(FLOAT, 1.0, doc="slope of the sigmoid")},
        infer=_same_type,
        cost=pointwise_cost(5),
        lower=_lower,
        pointwise=True,
        channels=PASS_ANY,
    )
)


def conv_swish(b: Builder, x: Value, *, channels: int, stride: int = 1, beta: float = 1.0) -> Value:
    """3x3 conv (no bias), batchnorm, swish_beta: the plugin's block, callable from YAML as
    `{block: conv_swish, channels: 32}` and from Python as `b.block("conv_swish", x, ...)`."""
    y = b.conv2d(
        x, name="conv", out_channels=channels, kernel_size=3, stride=stride, padding=1, bias=False
    )
    y = b.batchnorm(y, name="bn")
    return b.node("swish_beta", y, name="act", beta=beta)


archgraph.register_block(conv_swish)
