"""Learned tokens of vision transformers: `class_token` prepends learned tokens to a sequence,
`position_embedding` adds a learned embedding to every position.

Each of these ops owns one tensor stored at the node's own id (a ParamSpec named ""), so nodes
named `cls_token` and `pos_embed` hold the tensors timm keeps at those top-level state_dict keys,
and a timm ViT state_dict loads strictly. The lowering reads the tensor with `emit.own_tensor()`
(a get_attr of the parameter codegen installs at the node id).
"""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import fx

from archgraph.ir.types import TensorType
from archgraph.ops.registry import (
    INT,
    Arg,
    ChannelRule,
    Emitter,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    channels_fixed,
    free,
    need_rank,
    pointwise_cost,
    register_op,
)

OWN = ""  # the ParamSpec name of the tensor a node stores at its own id
# the [1, T, D] tensor follows the token channels (the last dim)
_TOKEN_CHANNELS = channels_fixed(ChannelRule("pass", axis=-1, out_params={OWN: 2}))


def prepend_tokens(x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """[1, T, D] learned tokens, repeated over the batch, in front of x [N, L, D]."""
    return torch.cat([tokens.expand(x.shape[0], -1, -1), x], dim=1)


def _class_token_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [3], "tokens [N, L, D]")
    if args["num_tokens"] < 1:
        raise ShapeMismatch(
            "num_tokens must be positive", expected=">= 1", found=str(args["num_tokens"])
        )
    n, length, dim = x.shape
    return x.with_shape((n, args["num_tokens"] + length, dim))


def _class_token_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    return {OWN: ParamSpec((1, args["num_tokens"], ins[0].shape[2]), "trunc_normal")}


def _class_token_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(prepend_tokens, (xs[0], emit.own_tensor()))


CLASS_TOKEN = register_op(
    OpDef(
        name="class_token",
        doc="prepend learned tokens [1, num_tokens, D] to tokens [N, L, D] (ViT's cls_token)",
        args={"num_tokens": Arg(INT, 1)},
        infer=_class_token_infer,
        params=_class_token_params,
        cost=free,
        lower=_class_token_lower,
        channels=_TOKEN_CHANNELS,
    )
)


def _position_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    return need_rank(ins, [3], "tokens [N, L, D]")


def _position_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    _, length, dim = ins[0].shape
    return {OWN: ParamSpec((1, length, dim), "trunc_normal")}


def _position_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(operator.add, (xs[0], emit.own_tensor()))


POSITION_EMBEDDING = register_op(
    OpDef(
        name="position_embedding",
        doc="add a learned embedding [1, L, D] to tokens [N, L, D] (ViT's pos_embed)",
        infer=_position_infer,
        params=_position_params,
        cost=pointwise_cost(1),
        lower=_position_lower,
        channels=_TOKEN_CHANNELS,
    )
)
