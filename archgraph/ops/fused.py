"""fused_pointwise: a chain of pointwise steps computed as one call (made by the pointwise-fusion
pass, never written in a spec by hand, though it may be).

The chain is data: `steps` is a list of steps, each `[name]` or `[name, operand]`, applied in
order to a running value that starts as input 0:

- unary `[relu]`, `[relu6]`, `[sigmoid]`, `[tanh]`, `[silu]`, `[hardswish]`, `[hardsigmoid]`,
  `[gelu]` (erf form), `[gelu_tanh]` (tanh approximation);
- `[scale, factor]`: times a constant;
- `[add, k]`, `[mul, k]`: plus / times input k, with broadcasting (k = 0 is the chain's own
  input: x * sigmoid(x) is `[[sigmoid], [mul, 0]]` over one input);
- `[affine]`: times a per-channel scale plus a per-channel shift along dim 1 (an eval-mode
  batchnorm), held as the node's tensors `step<i>.scale` and `step<i>.shift`.

Each step also carries its C expression (`STEPS[name].expr`, over `x`, the running value, and
`y`, `scale`, `shift` or `factor`), so a kernel renderer can emit one kernel from the same
description. The CPU path is archgraph.codegen.kernels.cpu.pointwise_chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archgraph.codegen.kernels.cuda import dispatch
from archgraph.ir.types import TensorType
from archgraph.ops.elementwise import broadcast
from archgraph.ops.registry import (
    Arg,
    ArgKind,
    ArgTypeError,
    Cost,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    register_op,
)


@dataclass(frozen=True)
class StepDef:
    """One kind of step: its operand ("" none, "float" a constant, "input" an input index,
    "params" per-channel tensors), flops per element, and its C expression."""

    name: str
    operand: str
    flops: int
    expr: str


STEPS: dict[str, StepDef] = {
    s.name: s
    for s in [
        StepDef("relu", "", 1, "fmaxf(x, 0.0f)"),
        StepDef("relu6", "", 2, "fminf(fmaxf(x, 0.0f), 6.0f)"),
        StepDef("sigmoid", "", 3, "1.0f / (1.0f + expf(-x))"),
        StepDef("tanh", "", 3, "tanhf(x)"),
        StepDef("silu", "", 4, "x / (1.0f + expf(-x))"),
        StepDef("hardswish", "", 4, "x * fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f"),
        StepDef("hardsigmoid", "", 3, "fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f"),
        StepDef("gelu", "", 8, "0.5f * x * (1.0f + erff(x * 0.70710678118654752f))"),
        StepDef(
            "gelu_tanh",
            "",
            10,
            "0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)))",
        ),
        StepDef("scale", "float", 1, "x * factor"),
        StepDef("add", "input", 1, "x + y"),
        StepDef("mul", "input", 1, "x * y"),
        StepDef("affine", "params", 2, "x * scale + shift"),
    ]
}
UNARY_STEPS = tuple(name for name, s in STEPS.items() if s.operand == "")


def _step(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not value or value[0] not in STEPS:
        raise ArgTypeError(f"a step [name] or [name, operand] with name one of {', '.join(STEPS)}")
    d = STEPS[value[0]]
    rest = list(value[1:])
    if d.operand in ("", "params"):
        if rest:
            raise ArgTypeError(f"step [{d.name}] without an operand")
        return (d.name,)
    if len(rest) != 1:
        raise ArgTypeError(f"step [{d.name}, operand] with one operand")
    operand = rest[0]
    if d.operand == "float":
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            raise ArgTypeError(f"step [{d.name}, number]")
        return (d.name, float(operand))
    if isinstance(operand, bool) or not isinstance(operand, int) or operand < 0:
        raise ArgTypeError(f"step [{d.name}, input index >= 0]")
    return (d.name, operand)


def _steps(value: Any) -> tuple[tuple[Any, ...], ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ArgTypeError("a non-empty list of pointwise steps, e.g. [[affine], [relu]]")
    return tuple(_step(s) for s in value)


STEP_LIST = ArgKind(
    "list of pointwise steps",
    _steps,
    {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "maxItems": 2}},
)


def step_types(steps: tuple[tuple[Any, ...], ...], ins: list[TensorType]) -> list[TensorType]:
    """The running value's type before each step, then the output type (len(steps) + 1)."""
    acc = ins[0]
    types = [acc]
    used = {0}
    for step in steps:
        d = STEPS[step[0]]
        if d.operand == "input":
            k = step[1]
            if k >= len(ins):
                raise ShapeMismatch(
                    f"step {list(step)} names a missing input",
                    expected=f"an input index below {len(ins)}",
                    found=str(k),
                )
            used.add(k)
            acc = broadcast(acc, ins[k], f"fused step {d.name}")
        elif d.operand == "params" and acc.rank < 2:
            raise ShapeMismatch(
                "an affine step needs channels at dim 1", expected="rank >= 2", found=str(acc)
            )
        types.append(acc)
    unused = sorted(set(range(len(ins))) - used)
    if unused:
        raise ShapeMismatch(
            "every input of a fused group must be used by a step",
            expected=f"[add, {unused[0]}] or [mul, {unused[0]}] among the steps",
            found=f"input {unused[0]} unused",
            input_index=unused[0],
        )
    return types


def _infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return step_types(args["steps"], ins)[-1]


def _params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    types = step_types(args["steps"], ins)
    specs: dict[str, ParamSpec] = {}
    for i, step in enumerate(args["steps"]):
        if STEPS[step[0]].operand == "params":
            c = (types[i].shape[1],)
            specs[f"step{i}.scale"] = ParamSpec(c, "ones", trainable=False)
            specs[f"step{i}.shift"] = ParamSpec(c, "zeros", trainable=False)
    return specs


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    types = step_types(args["steps"], ins)
    flops = sum(STEPS[s[0]].flops * types[i + 1].numel for i, s in enumerate(args["steps"]))
    return Cost(flops=flops)


class ChannelAffine(nn.Module):
    """The per-channel scale and shift of one affine step (buffers)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("scale", torch.empty(channels, device="meta"))
        self.register_buffer("shift", torch.empty(channels, device="meta"))


class FusedPointwise(nn.Module):
    def __init__(self, steps: tuple[tuple[Any, ...], ...], types: list[TensorType]) -> None:
        super().__init__()
        self.steps = steps
        self.affine_steps = [i for i, s in enumerate(steps) if STEPS[s[0]].operand == "params"]
        for i in self.affine_steps:
            self.add_module(f"step{i}", ChannelAffine(types[i].shape[1]))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        affines = {}
        for i in self.affine_steps:
            mod = getattr(self, f"step{i}")
            affines[i] = (mod.scale, mod.shift)
        return dispatch.pointwise_chain(self.steps, inputs, affines)

    def extra_repr(self) -> str:
        return " -> ".join("(" + ", ".join(str(p) for p in s) + ")" for s in self.steps)


def _module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return FusedPointwise(args["steps"], step_types(args["steps"], ins))


FUSED_POINTWISE = register_op(
    OpDef(
        name="fused_pointwise",
        doc="a chain of pointwise steps over its inputs, computed as one call (pointwise fusion)",
        args={"steps": Arg(STEP_LIST, doc="[[name], [name, operand], ...] applied to input 0")},
        arity=(1, None),
        infer=_infer,
        params=_params,
        cost=_cost,
        module=_module,
    )
)

# The step each single-input pointwise op of the registry becomes inside a fused group.
UNARY_STEP_OF_OP: dict[str, Callable[[dict[str, Any]], tuple[Any, ...]]] = {
    **{name: (lambda args, name=name: (name,)) for name in UNARY_STEPS if name != "gelu_tanh"},
    "gelu": lambda args: ("gelu",) if args["approximate"] == "none" else ("gelu_tanh",),
    "scale": lambda args: ("scale", args["factor"]),
}
# Two-input pointwise ops: their step with the other operand's input index.
BINARY_STEP_OF_OP = {"add": "add", "mul": "mul"}
