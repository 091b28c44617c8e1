"""Hypernetwork ops (Ha et al. 2017, "HyperNetworks"; the magnitude-invariant parametrization,
MIP, of Ortiz et al. 2023, "Magnitude Invariant Parametrizations Improve Hypernetwork Learning").

- `learned_embedding`: a learned vector [1, dim] with no input (a layer embedding z_j that a
  hypernetwork reads); stored at the node's own id.
- `sphere_encode`: x -> [cos(pi x / 2), sin(pi x / 2)] over the last dim: every pair has norm 1,
  so the encoding has the constant magnitude sqrt(dim) whatever x is (MIP's input encoding; for
  inputs in [0, 1] it is one-to-one).
- `hyper_conv2d`: a 2-D convolution whose weight is an *input*, the output of a generator
  subgraph, not a parameter: inputs x [N, C, H, W] and w [B, out * C * kh * kw] with B = 1 (one
  weight for the batch) or B = N (a weight per sample, e.g. generated from a task embedding; run
  as one grouped convolution). With `mip: true` it also owns a learned static `weight` and
  convolves with static + generated (MIP's additive formulation); `bias` is a learned static
  bias. Its cost rule counts the convolution (and the MIP addition); the generator's work is
  counted by the generator's own nodes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from archgraph.ir.types import TensorType
from archgraph.ops.conv import window_out
from archgraph.ops.registry import (
    BOOL,
    INT,
    PAIR,
    Arg,
    Cost,
    Emitter,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    free,
    need_rank,
    pointwise_cost,
    register_op,
)

OWN = ""  # the ParamSpec name of the tensor a node stores at its own id


# ---- learned_embedding ----------------------------------------------------------------------
def _embedding_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    if args["dim"] < 1:
        raise ShapeMismatch("dim must be positive", expected=">= 1", found=str(args["dim"]))
    return TensorType((1, args["dim"]))


def _embedding_lower(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.method("reshape", (emit.own_tensor(), 1, args["dim"]))


LEARNED_EMBEDDING = register_op(
    OpDef(
        name="learned_embedding",
        doc="a learned vector [1, dim] with no input (a hypernetwork's layer embedding)",
        args={"dim": Arg(INT)},
        arity=(0, 0),
        infer=_embedding_infer,
        params=lambda args, ins: {OWN: ParamSpec((1, args["dim"]), "trunc_normal")},
        cost=free,
        lower=_embedding_lower,
        # channels=None: no input to follow; pruning leaves it as it is
    )
)


# ---- sphere_encode --------------------------------------------------------------------------
def sphere_encode(x: torch.Tensor) -> torch.Tensor:
    """[cos(pi x / 2), sin(pi x / 2)] concatenated over the last dim (constant magnitude)."""
    angle = x * (math.pi / 2)
    return torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1)


def _sphere_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [2, 3], "[N, features]")
    return x.with_shape((*x.shape[:-1], 2 * x.shape[-1]))


SPHERE_ENCODE = register_op(
    OpDef(
        name="sphere_encode",
        doc="x -> [cos(pi x / 2), sin(pi x / 2)] over the last dim: constant magnitude (MIP)",
        infer=_sphere_infer,
        cost=pointwise_cost(2),  # scale, then cos or sin, per output element
        lower=lambda emit, args, xs: emit.function(sphere_encode, (xs[0],)),
        # channels=None: the doubled width is not a channel permutation
    )
)


# ---- hyper_conv2d ---------------------------------------------------------------------------
def _weight_shape(args: dict[str, Any], cin: int) -> tuple[int, int, int, int]:
    kh, kw = args["kernel_size"]
    return (args["out_channels"], cin, kh, kw)


class HyperConv2d(nn.Module):
    """conv2d(x, [static +] generated weight) + static bias; see the module docstring."""

    def __init__(
        self,
        in_channels: int,
        args: dict[str, Any],
        device: Any = None,
    ) -> None:
        super().__init__()
        self.shape = _weight_shape(args, in_channels)
        self.stride, self.padding = args["stride"], args["padding"]
        self.weight = nn.Parameter(torch.empty(self.shape, device=device)) if args["mip"] else None
        self.bias = (
            nn.Parameter(torch.empty(args["out_channels"], device=device)) if args["bias"] else None
        )

    def forward(self, x: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        w = generated.reshape(generated.shape[0], *self.shape)
        if self.weight is not None:
            w = w + self.weight
        if w.shape[0] == 1:
            return F.conv2d(x, w[0], self.bias, self.stride, self.padding)
        out, cin, kh, kw = self.shape
        bias = self.bias.repeat(n) if self.bias is not None else None
        y = F.conv2d(
            x.reshape(1, n * cin, *x.shape[2:]),
            w.reshape(n * out, cin, kh, kw),
            bias,
            self.stride,
            self.padding,
            groups=n,
        )
        return y.reshape(n, out, *y.shape[2:])


def _hyper_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = need_rank(ins, [4], "NCHW")
    n, c, h, w = x.shape
    shape = _weight_shape(args, c)
    numel = math.prod(shape)
    gen = ins[1]
    if gen.rank != 2 or gen.shape[0] not in (1, n) or gen.shape[1] != numel:
        raise ShapeMismatch(
            "the generated weight does not fit the convolution",
            expected=f"[1, {numel}] or [{n}, {numel}] (out * in * kh * kw = {shape})",
            found=str(gen),
            input_index=1,
        )
    if args["out_channels"] < 1:
        raise ShapeMismatch(
            "out_channels must be positive", expected=">= 1", found=str(args["out_channels"])
        )
    (kh, kw), (sh, sw), (ph, pw) = args["kernel_size"], args["stride"], args["padding"]
    ho, wo = window_out(h, kh, sh, ph), window_out(w, kw, sw, pw)
    if ho < 1 or wo < 1:
        raise ShapeMismatch(
            "kernel, stride or padding do not fit the input",
            expected=f"an input of at least {kh - 2 * ph}x{kw - 2 * pw} pixels",
            found=str(x),
            input_index=0,
        )
    return x.with_shape((n, args["out_channels"], ho, wo))


def _hyper_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    shape = _weight_shape(args, ins[0].shape[1])
    fan_in = math.prod(shape[1:])
    specs = {}
    if args["mip"]:
        specs["weight"] = ParamSpec(shape, "kaiming_uniform", fan_in=fan_in)
    if args["bias"]:
        specs["bias"] = ParamSpec((shape[0],), "fan_in_uniform", fan_in=fan_in)
    return specs


def _hyper_cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    shape = _weight_shape(args, ins[0].shape[1])
    macs = out.numel * math.prod(shape[1:])
    mip_add = ins[1].numel if args["mip"] else 0
    return Cost(macs=macs, flops=2 * macs + mip_add + (out.numel if args["bias"] else 0))


HYPER_CONV2D = register_op(
    OpDef(
        name="hyper_conv2d",
        doc="2-D convolution whose weight is an input (a hypernetwork's output); "
        "mip: add a learned static weight",
        args={
            "out_channels": Arg(INT),
            "kernel_size": Arg(PAIR),
            "stride": Arg(PAIR, 1),
            "padding": Arg(PAIR, 0),
            "bias": Arg(BOOL, False),
            "mip": Arg(BOOL, False, doc="weight = learned static weight + generated weight"),
        },
        arity=(2, 2),
        infer=_hyper_infer,
        params=_hyper_params,
        cost=_hyper_cost,
        module=lambda args, ins: HyperConv2d(ins[0].shape[1], args, device="meta"),
        # channels=None: the weight's channels are the generator's outputs; pruning them would
        # reshape the generator, which the channel rules cannot state (pruning stops here)
    )
)
