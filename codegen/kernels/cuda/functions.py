"""Autograd Functions over generated kernels, and the two ways to run a kernel.

`CudaLauncher` compiles and launches on the GPU (runtime.py); `HostLauncher` runs the same
kernel object on the host (the program and index expressions evaluated in torch), which is how
every forward and backward kernel is checked, gradcheck included, on a machine without a GPU.
Kernels are built once per (group, layouts) and reused (`lru_cache`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache, reduce
from typing import Any

import torch
from archgraph.codegen.kernels.cuda import pointwise, rowwise
from archgraph.codegen.kernels.cuda.groups import grad_layout
from archgraph.codegen.kernels.cuda.index import DTYPE_NAMES, Layout, memory_order
from archgraph.codegen.kernels.cuda.pointwise import (
    Chain,
    PointwiseKernel,
    backward_program,
    forward_program,
    make_kernel,
)
from archgraph.codegen.kernels.cuda.rowwise import RowKernel
from torch.autograd.function import once_differentiable


class HostLauncher:
    """Runs kernels on the host: what every GPU thread computes, in torch."""

    name = "host"

    def pointwise(self, kernel: PointwiseKernel, inputs: Sequence[torch.Tensor],
                  outputs: Sequence[torch.Tensor]) -> None:  # fmt: skip
        pointwise.run_host(kernel, inputs, outputs)

    def rows(self, kernel: RowKernel, tensors: dict[str, torch.Tensor]) -> None:
        rowwise.run_host(kernel, tensors)


class CudaLauncher:
    """Compiles with NVRTC and launches through CuPy on PyTorch's current stream."""

    name = "cuda"

    def pointwise(self, kernel: PointwiseKernel, inputs: Sequence[torch.Tensor],
                  outputs: Sequence[torch.Tensor]) -> None:  # fmt: skip
        from archgraph.codegen.kernels.cuda import runtime

        if kernel.numel:
            runtime.launch(kernel, [*inputs, *outputs])

    def rows(self, kernel: RowKernel, tensors: dict[str, torch.Tensor]) -> None:
        from archgraph.codegen.kernels.cuda import runtime

        if kernel.rows:
            runtime.launch(kernel, [tensors[a] for a in kernel.args])


HOST = HostLauncher()
CUDA = CudaLauncher()
Launcher = HostLauncher | CudaLauncher


def aligned(kernel: PointwiseKernel, inputs: Sequence[torch.Tensor],
            outputs: Sequence[torch.Tensor]) -> PointwiseKernel:  # fmt: skip
    """The vectorized kernel when its vector pointers are aligned, else its scalar form."""
    need = kernel.alignment()
    if not need:
        return kernel
    ptrs = [t.data_ptr() for t in outputs] + [inputs[k].data_ptr() for k in kernel.vector_inputs()]
    return kernel if all(p % need == 0 for p in ptrs) else kernel.scalar()


@lru_cache(maxsize=4096)
def forward_kernel(chain: Chain, inputs: tuple[Layout, ...], out: Layout) -> PointwiseKernel:
    return make_kernel("forward", forward_program(chain), inputs, [out])


@lru_cache(maxsize=4096)
def backward_kernel(chain: Chain, inputs: tuple[Layout, ...], gout: Layout, out: Layout,
                    needs: tuple[int, ...]) -> PointwiseKernel:  # fmt: skip
    g = grad_layout(out)
    return make_kernel("backward", backward_program(chain, needs), [*inputs, gout],
                       [g] * len(needs), order=memory_order(out))  # fmt: skip


def _result_dtype(tensors: Sequence[torch.Tensor]) -> torch.dtype:
    return reduce(torch.promote_types, [t.dtype for t in tensors])


def _like(operands: Sequence[torch.Tensor], shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    """The output: laid out like the first full-shape operand (channels_last stays so)."""
    for t in operands:
        if t.shape == shape:
            return torch.empty_like(t, dtype=dtype)
    return torch.empty(shape, dtype=dtype, device=operands[0].device)


class ChainFunction(torch.autograd.Function):
    """One fused pointwise group: forward kernel; backward kernel recomputing the chain."""

    @staticmethod
    def forward(
        ctx: Any, chain: Chain, launcher: Launcher, *operands: torch.Tensor
    ) -> torch.Tensor:
        shape = torch.broadcast_shapes(*(t.shape for t in operands))
        out = _like(operands, shape, _result_dtype(operands))
        layouts = tuple(Layout.of(t) for t in operands)
        kernel = aligned(forward_kernel(chain, layouts, Layout.of(out)), operands, [out])
        launcher.pointwise(kernel, operands, [out])
        ctx.chain, ctx.launcher, ctx.out = chain, launcher, Layout.of(out)
        ctx.save_for_backward(*operands)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, gout: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        operands = ctx.saved_tensors
        needs = tuple(k for k, need in enumerate(ctx.needs_input_grad[2:]) if need)
        result: list[torch.Tensor | None] = [None] * len(operands)
        if needs:
            g = grad_layout(ctx.out)
            grads = [torch.empty_strided(g.shape, g.strides, dtype=gout.dtype, device=gout.device)
                     for _ in needs]  # fmt: skip
            layouts = tuple(Layout.of(t) for t in operands)
            kernel = backward_kernel(ctx.chain, layouts, Layout.of(gout), ctx.out, needs)
            kernel = aligned(kernel, [*operands, gout], grads)
            ctx.launcher.pointwise(kernel, [*operands, gout], grads)
            for k, grad in zip(needs, grads, strict=True):
                t = operands[k]
                grad = grad if grad.shape == t.shape else grad.sum_to_size(t.shape)
                result[k] = grad.to(t.dtype)
        return (None, None, *result)


def run_chain(chain: Chain, operands: Sequence[torch.Tensor], launcher: Launcher) -> torch.Tensor:
    """A chain over operands (broadcast to one shape), differentiable."""
    return ChainFunction.apply(chain, launcher, *operands)


def copy_into(out: torch.Tensor, value: torch.Tensor, launcher: Launcher) -> None:
    """out[...] = value with one kernel (out may be a strided slice, e.g. of a dense buffer)."""
    from archgraph.codegen.kernels.cuda.groups import COPY

    kernel = forward_kernel(COPY, (Layout.of(value),), Layout.of(out))
    launcher.pointwise(aligned(kernel, [value], [out]), [value], [out])


# ---- row kernels -------------------------------------------------------------------------------


def _rows(x: torch.Tensor) -> tuple[int, int]:
    length = x.shape[-1] if x.dim() else 1
    return (x.numel() // length if length else 0), length


class SoftmaxFunction(torch.autograd.Function):
    """softmax over the last dim."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, launcher: Launcher) -> torch.Tensor:
        x = x.contiguous()
        rows, length = _rows(x)
        y = torch.empty_like(x)
        dtype = DTYPE_NAMES[x.dtype]
        launcher.rows(RowKernel("softmax_fwd", rows, length, dtype), {"x": x, "y": y})
        ctx.launcher = launcher
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        (y,) = ctx.saved_tensors
        rows, length = _rows(y)
        gx = torch.empty_like(y)
        kernel = RowKernel("softmax_bwd", rows, length, DTYPE_NAMES[y.dtype])
        ctx.launcher.rows(kernel, {"y": y, "g": g.contiguous().to(y.dtype), "gx": gx})
        return gx, None


class LayerNormFunction(torch.autograd.Function):
    """layer_norm over the last dim; the kernel gives the input's gradient, torch the weight's
    and bias's (column sums over rows)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                eps: float, launcher: Launcher) -> torch.Tensor:  # fmt: skip
        x = x.contiguous()
        rows, length = _rows(x)
        y = torch.empty_like(x)
        stats = torch.float64 if x.dtype == torch.float64 else torch.float32
        mean = torch.empty(rows, dtype=stats, device=x.device)
        rstd = torch.empty(rows, dtype=stats, device=x.device)
        kernel = _ln_kernel("layernorm_fwd", x, weight, bias, eps)
        tensors = {"x": x, "y": y, "mean": mean, "rstd": rstd}
        if weight is not None:
            tensors["weight"] = weight.contiguous()
        if bias is not None:
            tensors["bias"] = bias.contiguous()
        launcher.rows(kernel, tensors)
        ctx.launcher, ctx.eps, ctx.has_bias = launcher, eps, bias is not None
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, mean, rstd = ctx.saved_tensors
        g = g.contiguous().to(x.dtype)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = torch.empty_like(x)
            kernel = _ln_kernel("layernorm_bwd", x, weight, None, ctx.eps)
            tensors = {"x": x, "g": g, "mean": mean, "rstd": rstd, "gx": gx}
            if weight is not None:
                tensors["weight"] = weight.contiguous()
            ctx.launcher.rows(kernel, tensors)
        length = x.shape[-1]
        if weight is not None and ctx.needs_input_grad[1]:
            xhat = (x.reshape(-1, length).to(mean.dtype) - mean[:, None]) * rstd[:, None]
            gw = (g.reshape(-1, length).to(mean.dtype) * xhat).sum(0).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.reshape(-1, length).to(mean.dtype).sum(0).to(x.dtype)
        return gx, gw, gb, None, None


def _ln_kernel(kind: str, x: torch.Tensor, weight: torch.Tensor | None,
               bias: torch.Tensor | None, eps: float) -> RowKernel:  # fmt: skip
    rows, length = _rows(x)
    param = weight if weight is not None else x
    return RowKernel(kind, rows, length, DTYPE_NAMES[x.dtype], DTYPE_NAMES[param.dtype], eps,
                     weight is not None, bias is not None)  # fmt: skip
