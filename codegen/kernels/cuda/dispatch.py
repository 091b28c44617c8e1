"""Device dispatch of the fused ops: CUDA tensors take the generated kernels, everything else
the CPU path (archgraph.codegen.kernels.cpu), with one meaning. The functions have the CPU
path's signatures, so a fused op's module calls one name whatever the device.

The kernel path is taken for float32/float16/bfloat16 tensors on a CUDA device with CuPy
installed, outside tracing and export; inside `simulate()` it is also taken for CPU tensors,
run by the host launcher (the kernels' programs evaluated in torch), which is how whole
compiled models are checked against -O0 through the kernel path on a machine without a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
import torch.nn.functional as F
from archgraph.codegen.kernels import cpu

Tensor = torch.Tensor
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_SIMULATE: ContextVar[bool] = ContextVar("archgraph_simulate_kernels", default=False)


@contextmanager
def simulate() -> Iterator[None]:
    """Inside, CPU tensors run the generated kernels on the host (a testing aid)."""
    token = _SIMULATE.set(True)
    try:
        yield
    finally:
        _SIMULATE.reset(token)


def launcher_for(*tensors: Tensor | None) -> Any:
    """The launcher that runs kernels for these tensors, or None for the CPU path."""
    ts = [t for t in tensors if t is not None]
    on_cuda = all(t.is_cuda for t in ts)
    if not on_cuda and not _SIMULATE.get():
        return None  # the common CPU case, decided first
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export():
        return None
    from archgraph.codegen.kernels.cuda import functions

    if on_cuda and all(t.dtype in KERNEL_DTYPES for t in ts):
        from archgraph.codegen.kernels.cuda import runtime

        return functions.CUDA if runtime.available() else None
    # the host runs the kernels in float64 too (for gradcheck)
    host_dtypes = (*KERNEL_DTYPES, torch.float64)
    if _SIMULATE.get() and all(t.device.type == "cpu" and t.dtype in host_dtypes for t in ts):
        return functions.HOST
    return None


def _channel(t: Tensor, like: Tensor, axis: int = 1) -> Tensor:
    shape = [1] * like.dim()
    shape[axis] = t.numel()
    return t.reshape(shape)


def pointwise_chain(steps: Sequence[tuple[Any, ...]], inputs: Sequence[Tensor],
                    affines: dict[int, tuple[Tensor, Tensor]]) -> Tensor:  # fmt: skip
    """cpu.pointwise_chain, or one generated kernel (archgraph.ops.fused)."""
    launcher = launcher_for(*inputs, *(t for pair in affines.values() for t in pair))
    if launcher is None:
        return cpu.pointwise_chain(steps, inputs, affines)
    from archgraph.codegen.kernels.cuda.functions import run_chain
    from archgraph.codegen.kernels.cuda.groups import steps_chain

    chain = steps_chain(tuple(tuple(s) for s in steps), len(inputs))
    rank = torch.broadcast_shapes(*(t.shape for t in inputs))
    like = torch.empty(rank, device="meta")
    operands = list(inputs)
    for i in sorted(affines):
        scale, shift = affines[i]
        operands += [_channel(scale, like), _channel(shift, like)]
    return run_chain(chain, operands, launcher)


def _epilogue(y: Tensor, bias: Tensor | None, residual: Tensor | None, act: str, axis: int,
              launcher: Any) -> Tensor:  # fmt: skip
    from archgraph.codegen.kernels.cuda.functions import run_chain
    from archgraph.codegen.kernels.cuda.groups import epilogue_chain

    operands = [y]
    if bias is not None:
        operands.append(_channel(bias, y, axis))
    if residual is not None:
        operands.append(residual)
    return run_chain(
        epilogue_chain(bias is not None, residual is not None, act), operands, launcher
    )


def conv2d_fused(x: Tensor | list[Tensor], residual: Tensor | None, weight: Tensor,
                 bias: Tensor | None, *, stride: Sequence[int], padding: Sequence[int],
                 dilation: Sequence[int], groups: int, act: str, pre_scale: Tensor | None,
                 pre_shift: Tensor | None, pre_act: str, prepack: bool,
                 cache: cpu.PackedWeight, residual_inplace: bool = False) -> Tensor:  # fmt: skip
    """cpu.conv2d_fused, or: prologue kernel (BN-ReLU of the input), the library conv, epilogue
    kernel (bias, residual, activation in one pass over the output). A list x is the parts of
    the input's channels (see cpu.conv2d_fused): one library conv per part, summed.
    `residual_inplace` allows the CPU path to write into the residual (the kernels do not)."""
    parts = x if isinstance(x, list) else [x]
    launcher = launcher_for(*parts, residual, weight, bias, pre_scale, pre_shift)
    if launcher is None:
        return cpu.conv2d_fused(x, residual, weight, bias, stride=stride, padding=padding,
                                dilation=dilation, groups=groups, act=act, pre_scale=pre_scale,
                                pre_shift=pre_shift, pre_act=pre_act, prepack=prepack,
                                cache=cache, residual_inplace=residual_inplace)  # fmt: skip
    from archgraph.codegen.kernels.cuda.functions import run_chain
    from archgraph.codegen.kernels.cuda.groups import prologue_chain

    if isinstance(x, list):  # no prologue (the op's rule): accumulate the parts' convs
        y = cpu.conv_over_parts(x, weight, stride, padding, dilation, groups,
                                inplace_ok=not _needs_grad(*x, weight))  # fmt: skip
        if act == "none" and residual is None:  # as the library call would add it
            return y if bias is None else y + bias.view(1, -1, 1, 1)
        return _epilogue(y, bias, residual, act, 1, launcher)
    affine = pre_scale is not None and pre_shift is not None
    if affine or pre_act != "none":
        operands = [x] + ([_channel(pre_scale, x), _channel(pre_shift, x)] if affine else [])
        x = run_chain(prologue_chain(affine, pre_act), operands, launcher)
    if act == "none" and residual is None:
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    y = F.conv2d(x, weight, None, stride, padding, dilation, groups)
    return _epilogue(y, bias, residual, act, 1, launcher)


def linear_fused(x: Tensor, residual: Tensor | None, weight: Tensor, bias: Tensor | None, *,
                 act: str, prepack: bool, cache: cpu.PackedWeight) -> Tensor:  # fmt: skip
    """cpu.linear_fused, or the library matmul and one epilogue kernel (bias + GELU, ...)."""
    launcher = launcher_for(x, residual, weight, bias)
    if launcher is None:
        return cpu.linear_fused(x, residual, weight, bias, act=act, prepack=prepack, cache=cache)
    if act == "none" and residual is None:
        return F.linear(x, weight, bias)
    y = F.linear(x, weight)
    return _epilogue(y, bias, residual, act, y.dim() - 1, launcher)


def _needs_grad(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def buffer_init(x: Tensor, channels: int) -> Tensor:
    """cpu.buffer_init, or allocate and write x into the first channels with one kernel."""
    launcher = launcher_for(x)
    if launcher is None or _needs_grad(x):
        return cpu.buffer_init(x, channels)
    from archgraph.codegen.kernels.cuda.functions import copy_into

    channels_last = (
        x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
    )
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    buf = torch.empty((x.shape[0], channels, *x.shape[2:]), dtype=x.dtype, device=x.device,
                      memory_format=fmt if x.dim() == 4 else torch.contiguous_format)  # fmt: skip
    copy_into(buf.narrow(1, 0, x.shape[1]), x, launcher)
    return buf


def buffer_write(buf: Tensor, y: Tensor, offset: int) -> Tensor:
    """cpu.buffer_write, or one kernel writing y into its channel slice of the buffer (with
    gradients the CPU path's autograd-aware copy is used)."""
    launcher = launcher_for(buf, y)
    if launcher is None or _needs_grad(buf, y):
        return cpu.buffer_write(buf, y, offset)
    from archgraph.codegen.kernels.cuda.functions import copy_into

    copy_into(buf.narrow(1, offset, y.shape[1]), y, launcher)
    return buf


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Softmax over `dim` with one row kernel (torch's softmax off the kernel path)."""
    launcher = launcher_for(x)
    if launcher is None:
        return torch.softmax(x, dim)
    from archgraph.codegen.kernels.cuda.functions import SoftmaxFunction

    moved = dim % x.dim() != x.dim() - 1
    y = SoftmaxFunction.apply(x.transpose(dim, -1) if moved else x, launcher)
    return y.transpose(dim, -1) if moved else y


def layer_norm(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    """Layer norm over the last dim with one row kernel (F.layer_norm off the kernel path)."""
    launcher = launcher_for(x, weight, bias)
    if launcher is None:
        return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)
    from archgraph.codegen.kernels.cuda.functions import LayerNormFunction

    return LayerNormFunction.apply(x, weight, bias, eps, launcher)
