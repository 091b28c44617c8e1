"""The runtimes of the fused ops (installed as archgraph.codegen.runtimes).

The fused ops the passes make (archgraph.ops.fused, fused_conv, fused_buffer) are data: their
args, shape, parameter and cost rules. How they run is the back end's, registered here by op
name, as a JAX backend registers a lowering rule for a primitive it did not define: a module
(state, called as one fx call_module) or a lowering (fx calls). Each calls exactly one entry
point of codegen/kernels/cuda/dispatch.py, which picks the CUDA kernels or the CPU path by the
tensors' device. The fx lowering (codegen/fx.py) takes an op's own `module` / `lower` when it
has one, else the runtime registered here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from archgraph.codegen.kernels import cpu, recompute
from archgraph.codegen.kernels.cuda import dispatch
from torch import fx, nn

from archgraph.errors import GraphError
from archgraph.ir.types import TensorType
from archgraph.ops.fused import step_types
from archgraph.ops.registry import Emitter, Lower, MakeModule, get_op, get_step


@dataclass(frozen=True)
class Runtime:
    """How one op runs: exactly one of a module maker and an fx lowering."""

    module: MakeModule | None = None
    lower: Lower | None = None


_RUNTIMES: dict[str, Runtime] = {}


def register_runtime(
    op: str, *, module: MakeModule | None = None, lower: Lower | None = None
) -> None:
    """Give a data-only op its runtime (exactly one of module= and lower=)."""
    if (module is None) == (lower is None):
        raise ValueError(f"runtime of {op}: set exactly one of module= and lower=")
    _RUNTIMES[op] = Runtime(module, lower)


def runtime_of(op: str) -> Runtime:
    """The runtime of a data-only op; a GraphError when the back end has none."""
    runtime = _RUNTIMES.get(op)
    if runtime is None:
        hint = "an op without module= or lower= needs codegen.runtimes.register_runtime"
        raise GraphError(f"op '{op}' has no runtime", hint=hint)
    return runtime


# ---- fused_pointwise ---------------------------------------------------------------------------


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
        self.affine_steps = [i for i, s in enumerate(steps) if get_step(s[0]).operand == "params"]
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


def _pointwise_module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return FusedPointwise(args["steps"], step_types(args["steps"], ins))


# ---- conv2d_fused, linear_fused ----------------------------------------------------------------


class FusedConv2d(nn.Module):
    def __init__(self, args: dict[str, Any], ins: list[TensorType]) -> None:
        super().__init__()
        self.stride, self.padding = args["stride"], args["padding"]
        self.dilation, self.groups = args["dilation"], args["groups"]
        self.activation, self.pre_activation = args["activation"], args["pre_activation"]
        self.prepack, self.parts = args["prepack"], args["parts"]
        self.residual_inplace = args["residual_inplace"]
        for name, spec in get_op("conv2d_fused").params(args, ins).items():
            tensor = torch.empty(spec.shape, device="meta")
            if spec.trainable:
                self.register_parameter(name, nn.Parameter(tensor))
            else:
                self.register_buffer(name, tensor)
        if not args["bias"]:
            self.bias = None
        if not args["pre_affine"]:
            self.pre_scale = self.pre_shift = None
        self.packed = cpu.PackedWeight()

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        """tensors: the input (or its `parts`, concatenated on the channels), then the residual."""
        x = tensors[0] if self.parts == 1 else list(tensors[: self.parts])
        residual = tensors[self.parts] if len(tensors) > self.parts else None
        return dispatch.conv2d_fused(
            x,
            residual,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            act=self.activation,
            pre_scale=self.pre_scale,
            pre_shift=self.pre_shift,
            pre_act=self.pre_activation,
            prepack=self.prepack,
            cache=self.packed,
            residual_inplace=self.residual_inplace,
        )

    def extra_repr(self) -> str:
        return (
            f"stride={self.stride}, padding={self.padding}, groups={self.groups}, "
            f"activation={self.activation}, prepack={self.prepack}"
            + (f", parts={self.parts}" if self.parts > 1 else "")
        )


class Conv3dParts(nn.Module):
    """conv3d_parts: a conv3d over its inputs' channel concatenation, never made."""

    def __init__(self, args: dict[str, Any], ins: list[TensorType]) -> None:
        super().__init__()
        self.stride, self.padding = args["stride"], args["padding"]
        self.dilation, self.groups = args["dilation"], args["groups"]
        specs = get_op("conv3d_parts").params(args, ins)
        self.weight = nn.Parameter(torch.empty(specs["weight"].shape, device="meta"))
        self.bias = (
            nn.Parameter(torch.empty(specs["bias"].shape, device="meta")) if args["bias"] else None
        )
        self.packed = cpu.PackedWeight()

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        if cpu.onednn_ok(*parts, self.weight, self.bias):  # float32 CPU inference: in place
            args = (list(self.padding), list(self.stride), list(self.dilation), self.groups)
            return cpu.onednn_parts(
                cpu.channel_ranges(parts), None, self.weight, self.bias, args, "none", self.packed
            )
        grad = torch.is_grad_enabled() and any(t.requires_grad for t in (*parts, self.weight))
        y = cpu.conv_over_parts(parts, self.weight, self.stride, self.padding, self.dilation,
                                self.groups, inplace_ok=not grad)  # fmt: skip
        if self.bias is None:
            return y
        bias = self.bias.view(1, -1, 1, 1, 1)
        return y + bias if grad else y.add_(bias)


class FusedLinear(nn.Module):
    def __init__(self, args: dict[str, Any], ins: list[TensorType]) -> None:
        super().__init__()
        spec = get_op("linear_fused").params(args, ins)
        self.weight = nn.Parameter(torch.empty(spec["weight"].shape, device="meta"))
        self.bias = (
            nn.Parameter(torch.empty(spec["bias"].shape, device="meta")) if args["bias"] else None
        )
        self.activation, self.prepack = args["activation"], args["prepack"]
        self.packed = cpu.PackedWeight()

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        return dispatch.linear_fused(
            x,
            residual,
            self.weight,
            self.bias,
            act=self.activation,
            prepack=self.prepack,
            cache=self.packed,
        )

    def extra_repr(self) -> str:
        return f"activation={self.activation}, prepack={self.prepack}"


# ---- training batchnorm + activation (archgraph.ops.fused_train) ------------------------------

# activations whose backward reads only their output: safe in place after a batchnorm
_IN_PLACE = ("relu", "sigmoid", "tanh")


class BatchNormAct(nn.modules.batchnorm._BatchNorm):
    """PyTorch's batchnorm (any rank 2-5 input), then an activation."""

    def __init__(self, channels: int, activation: str, recompute: bool, **kwargs: Any) -> None:
        super().__init__(channels, device="meta", **kwargs)
        self.activation, self.recompute = activation, recompute

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if not 2 <= input.dim() <= 5:
            raise ValueError(f"expected a rank 2-5 input (got rank {input.dim()})")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.recompute and self.training and torch.is_grad_enabled():
            assert self.num_batches_tracked is not None and self.momentum is not None
            self.num_batches_tracked.add_(1)  # what _BatchNorm.forward does, then its kernel
            return recompute.batchnorm_relu(
                input, self.weight, self.bias, self.running_mean, self.running_var,
                self.momentum, self.eps, self.activation == "relu",
            )  # fmt: skip
        y = super().forward(recompute.dense(input))
        return cpu.activation(y, self.activation, self.activation in _IN_PLACE)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"


def _bn_act_module(args: dict[str, Any], ins: list[TensorType]) -> nn.Module:
    return BatchNormAct(
        ins[0].shape[1],
        args["activation"],
        args["recompute"],
        eps=args["eps"],
        momentum=args["momentum"],
        affine=args["affine"],
    )


# ---- dense-block buffers -----------------------------------------------------------------------


def _buffer_init(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(dispatch.buffer_init, (xs[0], args["channels"]))


def _buffer_write(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(dispatch.buffer_write, (xs[0], xs[1], args["offset"]))


def _buffer_prefix(emit: Emitter, args: dict[str, Any], xs: list[fx.Node]) -> fx.Node:
    return emit.function(cpu.buffer_prefix, (xs[0], args["channels"]))


register_runtime("fused_pointwise", module=_pointwise_module)
register_runtime("conv2d_fused", module=FusedConv2d)
register_runtime("conv3d_parts", module=Conv3dParts)
register_runtime("linear_fused", module=FusedLinear)
register_runtime("batchnorm_act", module=_bn_act_module)
register_runtime("buffer_init", lower=_buffer_init)
register_runtime("buffer_write", lower=_buffer_write)
register_runtime("buffer_prefix", lower=_buffer_prefix)
