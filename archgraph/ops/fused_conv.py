"""conv2d_fused and linear_fused: a convolution or linear layer with its neighbours folded in
(made by the fusion passes):

    out = activation(conv2d(prologue(x), weight, bias) + residual)

- `bias`: after batchnorm folding, the batchnorm's shift lives here;
- prologue (conv only, `pre_affine` / `pre_activation`): a per-channel affine of the input
  (`pre_scale`, `pre_shift`: an eval-mode batchnorm) and an activation, i.e. the BN-ReLU of a
  pre-activation layer (DenseNet) that feeds the conv;
- `residual`: a second input of the output's shape added before the activation (ResNet's add);
- `activation`: one of the unary pointwise steps registered when this module loads (the
  built-in activations; archgraph.ops.fused.unary_steps), or "none";
- `prepack`: compute with the weight reordered once into the device's preferred layout (the
  layout pass sets it; on the CPU: oneDNN's blocked weights and fused post-ops);
- `parts` (conv only): the first `parts` inputs are read as their channel concatenation, which is
  never made: the conv runs on each over its slice of the weight's input channels and the
  results accumulate (the dense-concat pass's split of a concat read only by convs);
- `residual_inplace` (conv only): the residual's storage may receive the result (oneDNN adds the
  conv into it in place), because nothing reads the residual afterwards (the inplace_residual
  pass): a ResNet stage's residual stream stays in one buffer instead of a fresh one per block.

Parameter names are the conv's and linear's own (`weight`, `bias`), so a fused node keeps the
state_dict keys of the conv it replaces. conv2d and linear name these ops as their fused form
(OpDef.fused). This module is data; the back end registers the ops' runtimes
(archgraph.codegen.runtimes; the CPU path is archgraph.codegen.kernels.cpu).
"""

from __future__ import annotations

from typing import Any

from archgraph.ir.types import TensorType
from archgraph.ops.conv import CONV2D
from archgraph.ops.fused import unary_steps
from archgraph.ops.linear import LINEAR
from archgraph.ops.registry import (
    BOOL,
    INT,
    STR,
    Arg,
    Cost,
    OpDef,
    Overwrite,
    ParamSpec,
    ShapeMismatch,
    get_step,
    register_op,
)

# The activations archgraph.ops registers (this package imports its modules in name order, so
# archgraph.ops.activation comes first); a plugin's activation joins fused pointwise groups.
ACTIVATIONS = ("none", *unary_steps())
_EPILOGUE_ARGS = {
    "activation": Arg(STR, "none", choices=ACTIVATIONS),
    "residual": Arg(BOOL, False, doc="add input 2 (the output's shape) before the activation"),
    "prepack": Arg(BOOL, False, doc="keep the weight in the device's preferred layout"),
}


def _base_args(args: dict[str, Any], base: OpDef) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k in base.args}


def _check_residual(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> TensorType:
    want = 2 if args["residual"] else 1
    if len(ins) != want:
        raise ShapeMismatch(
            "a fused op takes a residual input exactly when residual is true",
            expected=f"{want} input(s)",
            found=f"{len(ins)}",
        )
    if args["residual"] and ins[1] != out:
        raise ShapeMismatch(
            "the residual input must have the output's type",
            expected=str(out),
            found=str(ins[1]),
            input_index=1,
        )
    return out


def _epilogue_flops(args: dict[str, Any], out: TensorType) -> int:
    act = get_step(args["activation"]).flops if args["activation"] != "none" else 0
    return (act + (1 if args["residual"] else 0)) * out.numel


# ---- conv2d_fused ------------------------------------------------------------------------------


def parts_type(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    """The type of the input a conv over `parts` reads: the channel concatenation of its first
    `parts` inputs (which must differ only in channels; no groups then)."""
    parts = args["parts"]
    if parts < 1 or len(ins) < parts:
        raise ShapeMismatch(
            "a conv over parts reads its first `parts` inputs",
            expected=f"at least {max(parts, 1)} input(s), parts >= 1",
            found=f"{len(ins)} input(s), parts={parts}",
        )
    first = ins[0]
    for i, t in enumerate(ins[1:parts], start=1):
        if t.rank != first.rank or t.dtype != first.dtype or t.shape[2:] != first.shape[2:] or t.shape[0] != first.shape[0]:  # fmt: skip
            raise ShapeMismatch(
                "the parts of a conv's input must differ only in channels",
                expected=f"[N, *, ...] like {first}",
                found=str(t),
                input_index=i,
            )
    if parts > 1 and args["groups"] != 1:
        raise ShapeMismatch(
            "a conv over several parts is not grouped",
            expected="groups 1",
            found=f"parts={parts}, groups={args['groups']}",
        )
    channels = sum(t.shape[1] for t in ins[:parts])
    return TensorType((first.shape[0], channels, *first.shape[2:]), first.dtype)


PARTS_ARG = Arg(INT, 1, doc="inputs read as one channel concatenation (never made)")


def conv_input(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    """conv2d_fused's input type (parts_type); a conv over several parts takes no prologue."""
    if args["parts"] > 1 and (args["pre_affine"] or args["pre_activation"] != "none"):
        raise ShapeMismatch(
            "a conv over several parts takes no prologue",
            expected="pre_affine false and pre_activation none",
            found=f"parts={args['parts']}",
        )
    return parts_type(args, ins)


def _conv_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = conv_input(args, ins)
    out = CONV2D.infer(_base_args(args, CONV2D), [x])
    return _check_residual(args, [x, *ins[args["parts"] :]], out)


def _conv_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    x = conv_input(args, ins)
    specs = CONV2D.params(_base_args(args, CONV2D), [x])
    if args["pre_affine"]:
        c = (ins[0].shape[1],)
        specs["pre_scale"] = ParamSpec(c, "ones", trainable=False)
        specs["pre_shift"] = ParamSpec(c, "zeros", trainable=False)
    return specs


def _conv_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    base = CONV2D.cost(_base_args(args, CONV2D), [conv_input(args, ins)], out)
    pre = (2 if args["pre_affine"] else 0) + (
        get_step(args["pre_activation"]).flops if args["pre_activation"] != "none" else 0
    )
    return Cost(base.macs, base.flops + pre * ins[0].numel + _epilogue_flops(args, out))


CONV2D_FUSED = register_op(
    OpDef(
        name="conv2d_fused",
        doc="conv2d with folded batchnorm, an input BN-ReLU prologue, residual add and activation",
        args={
            **CONV2D.args,
            "pre_affine": Arg(BOOL, False, doc="per-channel scale and shift of the input"),
            "pre_activation": Arg(STR, "none", choices=("none", "relu")),
            **_EPILOGUE_ARGS,
            "parts": PARTS_ARG,
            "residual_inplace": Arg(BOOL, False, doc="may write into the residual input"),
        },
        arity=(1, None),
        fresh_output=True,
        overwrites=Overwrite(
            "residual_inplace", lambda args: args["parts"] if args["residual"] else None
        ),
        infer=_conv_infer,
        params=_conv_params,
        cost=_conv_cost,
        channels_last=True,
        stack=CONV2D.stack,
    )
)


# ---- linear_fused ------------------------------------------------------------------------------


def _linear_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    out = LINEAR.infer(_base_args(args, LINEAR), ins[:1])
    return _check_residual(args, ins, out)


def _linear_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    return LINEAR.params(_base_args(args, LINEAR), ins[:1])


def _linear_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    base = LINEAR.cost(_base_args(args, LINEAR), ins[:1], out)
    return Cost(base.macs, base.flops + _epilogue_flops(args, out))


LINEAR_FUSED = register_op(
    OpDef(
        name="linear_fused",
        doc="linear with folded batchnorm, residual add and activation",
        args={**LINEAR.args, **_EPILOGUE_ARGS},
        arity=(1, 2),
        infer=_linear_infer,
        params=_linear_params,
        cost=_linear_cost,
        stack=LINEAR.stack,
        fresh_output=True,
    )
)
