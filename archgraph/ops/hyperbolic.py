"""Poincaré-ball ops (curvature -c, ball radius 1/sqrt(c)) for hyperbolic networks: the Poincaré
ResNet of van Spengler et al. 2023 ("Poincaré ResNet"), with the layers of HNN++ (Shimizu et al.
2021). Points are vectors along dim 1: the features of [N, D], the channels of [N, C, H, W].

  expmap0(v)   = tanh(sqrt(c) |v|) v / (sqrt(c) |v|)
  logmap0(y)   = artanh(sqrt(c) |y|) y / (sqrt(c) |y|)
  x (+) y      = ((1 + 2c<x,y> + c|y|^2) x + (1 - c|x|^2) y) / (1 + 2c<x,y> + c^2 |x|^2 |y|^2)
  poincare_linear (HNN++ fully connected, z [in, out], r [out]):
      v_k = 2 |z_k| / sqrt(c) * asinh(lambda_x <sqrt(c) x, z_k / |z_k|> cosh(2 sqrt(c) r_k)
                                      - (lambda_x - 1) sinh(2 sqrt(c) r_k)),  lambda_x = 2 / (1 - c|x|^2)
      w = sinh(sqrt(c) v) / sqrt(c);  y = w / (1 + sqrt(1 + c |w|^2))
  poincare_conv2d: each k x k patch's points are beta-concatenated (logmap0, each scaled by
      B(C k^2 / 2, 1/2) / B(C / 2, 1/2), concatenated, expmap0) and go through poincare_linear
  poincare_midpoint_pool: the gyromidpoint of all pixels, (1/2) (x) (sum lambda_i x_i / sum (lambda_i - 1)),
      with r (x) m = tanh(r artanh(sqrt(c) |m|)) m / (sqrt(c) |m|)

Clamping (as the paper and geoopt do): norms are floored at MIN_NORM before dividing, artanh's
argument is kept below 1, and every op's result is projected into the ball of radius
(1 - BALL_EPS) / sqrt(c), so float32 never rounds a point onto the boundary.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.conv import window_out
from archgraph.ops.registry import (
    FLOAT,
    INT,
    Arg,
    Cost,
    OpDef,
    ParamSpec,
    ShapeMismatch,
    need_rank,
    register_op,
    same_shape,
)

BALL_EPS = 4e-3  # geoopt's float32 margin: points stay within (1 - BALL_EPS) / sqrt(c)
MIN_NORM = 1e-15
ATANH_MAX = 1 - 1e-6


def _norm(x: torch.Tensor) -> torch.Tensor:
    return x.norm(dim=1, keepdim=True).clamp_min(MIN_NORM)


def project(x: torch.Tensor, c: float) -> torch.Tensor:
    """x, pulled back inside the ball of radius (1 - BALL_EPS) / sqrt(c) where it is outside."""
    norm = _norm(x)
    limit = (1 - BALL_EPS) / math.sqrt(c)
    return torch.where(norm > limit, x / norm * limit, x)


def _artanh(x: torch.Tensor) -> torch.Tensor:
    return torch.atanh(x.clamp(max=ATANH_MAX))


def expmap0(v: torch.Tensor, c: float) -> torch.Tensor:
    sc_norm = math.sqrt(c) * _norm(v)
    return project(torch.tanh(sc_norm) * v / sc_norm, c)


def logmap0(y: torch.Tensor, c: float) -> torch.Tensor:
    sc_norm = math.sqrt(c) * _norm(y)
    return _artanh(sc_norm) * y / sc_norm


def mobius_add(x: torch.Tensor, y: torch.Tensor, c: float) -> torch.Tensor:
    xy = (x * y).sum(dim=1, keepdim=True)
    x2, y2 = x.pow(2).sum(dim=1, keepdim=True), y.pow(2).sum(dim=1, keepdim=True)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    den = 1 + 2 * c * xy + c * c * x2 * y2
    return project(num / den.clamp_min(MIN_NORM), c)


def poincare_fc(x: torch.Tensor, z: torch.Tensor, r: torch.Tensor, c: float) -> torch.Tensor:
    """HNN++'s Poincaré fully connected layer over the last dim: x [..., in] -> [..., out]."""
    sc = math.sqrt(c)
    lam = 2 / (1 - c * x.pow(2).sum(dim=-1, keepdim=True)).clamp_min(MIN_NORM)
    z_norm = z.norm(dim=0).clamp_min(MIN_NORM)
    inner = (x @ z) * (sc / z_norm)  # <sqrt(c) x, z_k / |z_k|>
    v = (
        2
        * z_norm
        / sc
        * torch.asinh(lam * inner * torch.cosh(2 * sc * r) - (lam - 1) * torch.sinh(2 * sc * r))
    )
    w = torch.sinh(sc * v) / sc
    y = w / (1 + torch.sqrt(1 + c * w.pow(2).sum(dim=-1, keepdim=True)))
    return y


def beta_ratio(channels: int, points: int) -> float:
    """B(channels * points / 2, 1/2) / B(channels / 2, 1/2): the beta-concatenation scale."""

    def log_beta(a: float, b: float) -> float:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    return math.exp(log_beta(channels * points / 2, 0.5) - log_beta(channels / 2, 0.5))


class PoincareLinear(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, c: float, device: Any = None) -> None:
        super().__init__()
        self.c = c
        self.weight = nn.Parameter(torch.empty(fan_in, fan_out, device=device))  # z
        self.bias = nn.Parameter(torch.empty(fan_out, device=device))  # r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return project(poincare_fc(x, self.weight, self.bias, self.c), self.c)


class PoincareConv2d(nn.Module):
    def __init__(self, channels: int, args: dict[str, Any], device: Any = None) -> None:
        super().__init__()
        k = args["kernel_size"]
        self.c, self.k, self.stride, self.padding = args["c"], k, args["stride"], args["padding"]
        self.beta = beta_ratio(channels, k * k)
        self.weight = nn.Parameter(
            torch.empty(channels * k * k, args["out_channels"], device=device)
        )
        self.bias = nn.Parameter(torch.empty(args["out_channels"], device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ho = window_out(h, self.k, self.stride, self.padding)
        wo = window_out(w, self.k, self.stride, self.padding)
        v = logmap0(x, self.c)  # the origin pads: zero in the tangent space
        patches = F.unfold(v, self.k, padding=self.padding, stride=self.stride)  # [N, C k k, L]
        points = expmap0(patches * self.beta, self.c).transpose(1, 2)  # [N, L, C k k]
        y = project(poincare_fc(points, self.weight, self.bias, self.c).transpose(1, 2), self.c)
        return y.reshape(n, -1, ho, wo)


def midpoint_pool(x: torch.Tensor, c: float) -> torch.Tensor:
    """The gyromidpoint of every pixel of x [N, C, H, W]: [N, C]."""
    flat = x.flatten(2)  # [N, C, HW]
    lam = 2 / (1 - c * flat.pow(2).sum(dim=1, keepdim=True)).clamp_min(MIN_NORM)
    m = (lam * flat).sum(dim=2) / (lam - 1).sum(dim=2).clamp_min(MIN_NORM)
    sc_norm = math.sqrt(c) * _norm(m)
    return project(torch.tanh(0.5 * _artanh(sc_norm)) * m / sc_norm, c)


# ---- op definitions -------------------------------------------------------------------------
_C = {"c": Arg(FLOAT, 1.0, doc="curvature magnitude: the ball has radius 1/sqrt(c)")}


def _check_c(args: dict[str, Any]) -> None:
    if not 0 < args["c"] < math.inf:
        raise ShapeMismatch(
            "the curvature c must be positive", expected="a finite c > 0", found=str(args["c"])
        )


def _same(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    _check_c(args)
    return need_rank(ins, [2, 4], "[N, D] or [N, C, H, W] (points along dim 1)")


def _pointwise(flops: int):
    """Cost of an op doing `flops` per element plus a norm (2 per element) over dim 1."""

    def cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
        return Cost(flops=(flops + 2) * out.numel)

    return cost


def _map_op(name: str, fn: Any, doc: str) -> OpDef:
    return register_op(
        OpDef(
            name=name,
            doc=doc,
            args=dict(_C),
            infer=_same,
            cost=_pointwise(4),
            lower=lambda emit, args, xs: emit.function(fn, (xs[0], args["c"])),
            # channels=None: the norm over dim 1 mixes every channel
        )
    )


EXPMAP0 = _map_op("expmap0", expmap0, "exponential map at the origin of the Poincaré ball")
LOGMAP0 = _map_op("logmap0", logmap0, "logarithmic map at the origin of the Poincaré ball")


def _mobius_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    x = _same(args, ins)
    same_shape("Möbius addition needs operands of one shape", x, ins[1], 1)
    return x


MOBIUS_ADD = register_op(
    OpDef(
        name="mobius_add",
        doc="Möbius addition x (+) y on the Poincaré ball (hyperbolic residual connection)",
        args=dict(_C),
        arity=(2, 2),
        infer=_mobius_infer,
        cost=_pointwise(12),
        lower=lambda emit, args, xs: emit.function(mobius_add, (xs[0], xs[1], args["c"])),
    )
)


def _fc_cost(in_features: int, out: TensorType) -> Cost:
    macs = out.numel * in_features
    return Cost(macs=macs, flops=2 * macs + 20 * out.numel)


def _linear_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    _check_c(args)
    x = need_rank(ins, [2], "points [N, D]")
    if args["out_features"] < 1:
        raise ShapeMismatch(
            "out_features must be positive", expected=">= 1", found=str(args["out_features"])
        )
    return x.with_shape((x.shape[0], args["out_features"]))


def _linear_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    d = ins[0].shape[1]
    return {
        "weight": ParamSpec((d, args["out_features"]), "kaiming_uniform", fan_in=d),
        "bias": ParamSpec((args["out_features"],), "zeros"),
    }


POINCARE_LINEAR = register_op(
    OpDef(
        name="poincare_linear",
        doc="Poincaré fully connected layer (HNN++): points [N, D] -> [N, out_features]",
        args={"out_features": Arg(INT), **_C},
        infer=_linear_infer,
        params=_linear_params,
        cost=lambda args, ins, out: _fc_cost(ins[0].shape[1], out),
        module=lambda args, ins: PoincareLinear(
            ins[0].shape[1], args["out_features"], args["c"], "meta"
        ),
    )
)


def _conv_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    _check_c(args)
    x = need_rank(ins, [4], "NCHW points (channels along dim 1)")
    n, _, h, w = x.shape
    k, s, p = args["kernel_size"], args["stride"], args["padding"]
    ho, wo = window_out(h, k, s, p), window_out(w, k, s, p)
    if ho < 1 or wo < 1 or args["out_channels"] < 1:
        raise ShapeMismatch(
            "kernel, stride or padding do not fit the input",
            expected=f"an input of at least {k - 2 * p}x{k - 2 * p} pixels, out_channels >= 1",
            found=f"{x}, out_channels {args['out_channels']}",
            input_index=0,
        )
    return x.with_shape((n, args["out_channels"], ho, wo))


def _conv_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    fan_in = ins[0].shape[1] * args["kernel_size"] ** 2
    return {
        "weight": ParamSpec((fan_in, args["out_channels"]), "kaiming_uniform", fan_in=fan_in),
        "bias": ParamSpec((args["out_channels"],), "zeros"),
    }


POINCARE_CONV2D = register_op(
    OpDef(
        name="poincare_conv2d",
        doc="Poincaré 2-D convolution: beta-concatenated k x k patches through a Poincaré FC",
        args={
            "out_channels": Arg(INT),
            "kernel_size": Arg(INT),
            "stride": Arg(INT, 1),
            "padding": Arg(INT, 0),
            **_C,
        },
        infer=_conv_infer,
        params=_conv_params,
        cost=lambda args, ins, out: _fc_cost(ins[0].shape[1] * args["kernel_size"] ** 2, out),
        module=lambda args, ins: PoincareConv2d(ins[0].shape[1], args, "meta"),
    )
)


def _pool_infer(args: dict[str, Any], ins: list[TensorType]) -> TensorType:
    _check_c(args)
    x = need_rank(ins, [4], "NCHW points (channels along dim 1)")
    return x.with_shape(x.shape[:2])


POINCARE_MIDPOINT_POOL = register_op(
    OpDef(
        name="poincare_midpoint_pool",
        doc="global pooling by the Poincaré gyromidpoint of all pixels: [N, C, H, W] -> [N, C]",
        args=dict(_C),
        infer=_pool_infer,
        cost=lambda args, ins, out: Cost(flops=6 * ins[0].numel),
        lower=lambda emit, args, xs: emit.function(midpoint_pool, (xs[0], args["c"])),
    )
)
