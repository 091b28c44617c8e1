"""Normalization: batchnorm (over dim 1 of a rank 2-5 tensor) and layernorm (over the last dim).

layernorm infers nothing about layout: on [N, D] and tokens [N, L, D] the last dim is the
features, but on a 4-D or 5-D tensor it may be W of an NCHW map, so there it takes the last dim
only when told so (`axis: -1`, channels-last [N, H, W, C]); the channels of NCHW are the
layernorm2d op's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    BOOL,
    FLOAT,
    INT,
    Affine,
    Arg,
    ChannelRule,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    channels_fixed,
    need_rank,
    optional,
    pointwise_cost,
    register_op,
)

_BATCHNORM = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}


def _bn_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return need_rank(ins, sorted(_BATCHNORM), "batched with channels at dim 1")


def _bn_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    c = (ins[0].shape[1],)
    specs: dict[str, ParamSpec] = {}
    if args["affine"]:
        specs["weight"] = ParamSpec(c, "ones")
        specs["bias"] = ParamSpec(c, "zeros")
    specs["running_mean"] = ParamSpec(c, "zeros", trainable=False)
    specs["running_var"] = ParamSpec(c, "ones", trainable=False)
    specs["num_batches_tracked"] = ParamSpec((), "zeros", trainable=False, dtype="int64")
    return specs


def _bn_module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    cls = _BATCHNORM[ins[0].rank]
    return cls(
        ins[0].shape[1],
        eps=args["eps"],
        momentum=args["momentum"],
        affine=args["affine"],
        device="meta",
    )


def _bn_scale_shift(
    args: dict[str, Any], tensor: Callable[[str], torch.Tensor], channels: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode batchnorm as a per-channel affine (float64):
    s = gamma / sqrt(var + eps), t = beta - mean * s."""
    mean = tensor("running_mean").double()
    scale = torch.rsqrt(tensor("running_var").double() + args["eps"])
    if args["affine"]:
        scale = scale * tensor("weight").double()
        return scale, tensor("bias").double() - mean * scale
    return scale, -mean * scale


BATCHNORM = register_op(
    OpDef(
        name="batchnorm",
        fresh_output=True,
        doc="batch normalization over channels (dim 1); running statistics are buffers",
        args={"eps": Arg(FLOAT, 1e-5), "momentum": Arg(FLOAT, 0.1), "affine": Arg(BOOL, True)},
        infer=_bn_infer,
        params=_bn_params,
        cost=pointwise_cost(2),
        module=_bn_module,
        channels=channels_fixed(
            ChannelRule(
                "pass",
                axis=1,
                out_params={"weight": 0, "bias": 0, "running_mean": 0, "running_var": 0},
            )
        ),
        affine=Affine(_bn_scale_shift),  # eval mode: folds into the conv/linear before it
    )
)


def _ln_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [2, 3, 4, 5], "batched")
    axis = args["axis"]
    if axis is None and x.rank <= 3:
        return x
    if axis is None or axis % x.rank != x.rank - 1 or not -x.rank <= axis < x.rank:
        why = "is not its last dim" if axis is not None else "needs an explicit axis"
        raise ShapeMismatch(
            f"layernorm normalizes the last dim; on a rank-{x.rank} input axis={axis} {why}",
            expected="`axis: -1` for channels-last [N, H, W, C], or op `layernorm2d` for the "
            "channels (dim 1) of NCHW",
            found=str(x),
            input_index=0,
        )
    return x


def _ln_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    if not args["elementwise_affine"]:
        return {}
    c = (ins[0].shape[-1],)
    specs = {"weight": ParamSpec(c, "ones")}
    if args["bias"]:
        specs["bias"] = ParamSpec(c, "zeros")
    return specs


def _ln_module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return nn.LayerNorm(
        ins[0].shape[-1],
        eps=args["eps"],
        elementwise_affine=args["elementwise_affine"],
        bias=args["bias"],
        device="meta",
    )


LAYERNORM = register_op(
    OpDef(
        name="layernorm",
        doc="layer normalization over the last dimension (4-D/5-D inputs: say `axis: -1`)",
        args={
            "axis": Arg(
                optional(INT),
                None,
                doc="the normalized dim; only the last (-1), required on 4-D and 5-D inputs",
            ),
            "eps": Arg(FLOAT, 1e-5),
            "elementwise_affine": Arg(BOOL, True),
            "bias": Arg(BOOL, True),
        },
        infer=_ln_infer,
        params=_ln_params,
        cost=pointwise_cost(5),
        module=_ln_module,
        channels=channels_fixed(ChannelRule("reduce", axis=-1)),  # mean/var mix the channels
    )
)
