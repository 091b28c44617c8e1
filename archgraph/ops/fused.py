"""fused_pointwise: a chain of pointwise steps computed as one call (made by the pointwise-fusion
pass, never written in a spec by hand, though it may be).

The chain is data: `steps` is a list of steps, each `[name]` or `[name, operand]`, applied in
order to a running value that starts as input 0. The step kinds are declared by the ops they
come from, in the ops' own files (OpDef.steps, archgraph.ops.registry.PointwiseStep), and by
plugins the same way:

- unary `[relu]`, `[relu6]`, `[sigmoid]`, `[tanh]`, `[silu]`, `[hardswish]`, `[hardsigmoid]`,
  `[gelu]` (erf form), `[gelu_tanh]` (tanh approximation) (archgraph.ops.activation);
- `[scale, factor]`: times a constant (archgraph.ops.scale);
- `[add, k]`, `[mul, k]`: plus / times input k, with broadcasting (k = 0 is the chain's own
  input: x * sigmoid(x) is `[[sigmoid], [mul, 0]]` over one input) (archgraph.ops.elementwise);
- `[affine]`: times a per-channel scale plus a per-channel shift along dim 1 (any op with an
  `Affine`, e.g. an eval-mode batchnorm), held as the node's tensors `step<i>.scale` and
  `step<i>.shift` (declared here).

Each step kind carries its C expression (over `x`, the running value, and `y`, `scale`, `shift`
or `factor`) and its torch functions, so the kernel renderer and the CPU path compute the same
description. This module is data; the back end registers the op's runtime
(archgraph.codegen.runtimes).
"""

from __future__ import annotations

from typing import Any

import torch

from archgraph.ir.types import TensorType
from archgraph.ops.elementwise import broadcast
from archgraph.ops.registry import (
    Arg,
    ArgKind,
    ArgTypeError,
    Cost,
    OpDef,
    ParamSpec,
    PointwiseStep,
    ShapeMismatch,
    get_step,
    pointwise_steps,
    register_op,
)


def _affine(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return torch.addcmul(shift, x, scale)


def _affine_(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    return x.mul_(scale).add_(shift)


AFFINE_STEP = PointwiseStep(
    "affine", "x * scale + shift", _affine, _affine_, flops=2, operand="params"
)


def unary_steps() -> tuple[str, ...]:
    """The registered step kinds without an operand (the activations), in registration order."""
    return tuple(name for name, s in pointwise_steps().items() if s.operand == "")


def _step(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str):
        value = [value]
    steps = pointwise_steps()
    if not isinstance(value, list | tuple) or not value or value[0] not in steps:
        raise ArgTypeError(f"a step [name] or [name, operand] with name one of {', '.join(steps)}")
    d = steps[value[0]]
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
        d = get_step(step[0])
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
        if get_step(step[0]).operand == "params":
            c = (types[i].shape[1],)
            specs[f"step{i}.scale"] = ParamSpec(c, "ones", trainable=False)
            specs[f"step{i}.shift"] = ParamSpec(c, "zeros", trainable=False)
    return specs


def _cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    types = step_types(args["steps"], ins)
    flops = sum(get_step(s[0]).flops * types[i + 1].numel for i, s in enumerate(args["steps"]))
    return Cost(flops=flops)


FUSED_POINTWISE = register_op(
    OpDef(
        name="fused_pointwise",
        fresh_output=True,
        doc="a chain of pointwise steps over its inputs, computed as one call (pointwise fusion)",
        args={"steps": Arg(STEP_LIST, doc="[[name], [name, operand], ...] applied to input 0")},
        arity=(1, None),
        infer=_infer,
        params=_params,
        cost=_cost,
        steps=(AFFINE_STEP,),
    )
)
