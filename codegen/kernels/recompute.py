"""Training batchnorm + ReLU recomputed in backward instead of kept (memory-efficient DenseNet,
Pleiss et al. 2017).

A dense layer's BN-ReLU reads its block's concatenation (a prefix of the block's buffer, kept
anyway) and writes a tensor as large, which the following conv would keep for its weight
gradient: over a block, memory quadratic in depth. Here the batchnorm keeps only its input and
its batch statistics (`BatchNormReluFunction`), its output carries a recipe that recomputes it,
and the conv that consumes it saves the recipe in place of the tensor (`recomputed_input`), so
the output is freed as soon as the conv has run and is rebuilt, one layer at a time, during
backward. Running statistics are updated by torch's own batchnorm kernel in forward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

Tensor = torch.Tensor
RECIPE = "_archgraph_recompute"  # attribute of an output that can be recomputed


def dense(x: Tensor) -> Tensor:
    """x itself if dense, else a dense copy in its layout (channels_last if its channels are
    innermost). torch's batchnorm kernels are 5-20x slower on a strided view, such as a dense
    block's prefix of its buffer, than on a copy of it, and the copy costs a fraction of that."""
    if x.dim() == 4 and x.stride(1) == 1 and x.shape[1] > 1:
        return x.contiguous(memory_format=torch.channels_last)
    return x.contiguous()


def _normalize(x: Tensor, weight: Tensor | None, bias: Tensor | None, mean: Tensor,
               invstd: Tensor, relu: bool) -> Tensor:  # fmt: skip
    view = (1, -1) + (1,) * (x.dim() - 2)
    scale = invstd if weight is None else invstd * weight
    shift = -mean * scale if bias is None else bias - mean * scale
    y = torch.addcmul(shift.reshape(view), x, scale.reshape(view))
    return y.relu_() if relu else y


class _Recomputed:
    """The recipe of one output, and what it last rebuilt: in backward the conv that reads the
    output rebuilds it first, and the batchnorm's own backward, which runs next, takes the
    dense input and the ReLU mask from there instead of copying and normalizing again."""

    __slots__ = ("args", "last")

    def __init__(self, *args: Any) -> None:
        self.args, self.last = args, None

    def __call__(self) -> Tensor:
        x, *rest = self.args
        self.last = (x := dense(x)), _normalize(x, *rest)
        return self.last[1]

    def take(self) -> tuple[Tensor, Tensor] | None:
        """(the dense input, the output) if a conv's backward just rebuilt them; forgets them."""
        out, self.last = self.last, None
        return out


class BatchNormReluFunction(torch.autograd.Function):
    """Training batchnorm (torch's kernel: batch statistics, running statistics updated with
    `factor`), then ReLU in place if `relu`. Saves the input (a view of a dense block's buffer
    is saved as the view) and the batch statistics only."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor | None, bias: Tensor | None,
                running_mean: Tensor | None, running_var: Tensor | None, factor: float,
                eps: float, relu: bool) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        y, mean, invstd = torch.native_batch_norm(
            dense(x), weight, bias, running_mean, running_var, True, factor, eps
        )
        if relu:
            y.relu_()
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        ctx.eps, ctx.relu, ctx.recipe = eps, relu, None
        ctx.mark_non_differentiable(mean, invstd)
        return y, mean, invstd

    @staticmethod
    def backward(ctx: Any, grad: Tensor, *_: Any) -> tuple[Tensor | None, ...]:
        x, weight, bias, mean, invstd = ctx.saved_tensors
        rebuilt = None if ctx.recipe is None else ctx.recipe.take()
        x, y = rebuilt or (dense(x), None)
        if ctx.relu:
            if y is None:
                y = _normalize(x, weight, bias, mean, invstd, True)
            grad = torch.ops.aten.threshold_backward(grad, y, 0)
        want = [ctx.needs_input_grad[0], weight is not None and ctx.needs_input_grad[1],
                bias is not None and ctx.needs_input_grad[2]]  # fmt: skip
        gx, gw, gb = torch.ops.aten.native_batch_norm_backward(
            grad, x, weight, None, None, mean, invstd, True, ctx.eps, want
        )
        return gx, gw if want[1] else None, gb if want[2] else None, None, None, None, None, None


def batchnorm_relu(x: Tensor, weight: Tensor | None, bias: Tensor | None,
                   running_mean: Tensor | None, running_var: Tensor | None, factor: float,
                   eps: float, relu: bool) -> Tensor:  # fmt: skip
    """BatchNormReluFunction's output, carrying the recipe that recomputes it."""
    y, mean, invstd = BatchNormReluFunction.apply(
        x, weight, bias, running_mean, running_var, factor, eps, relu
    )
    recipe = _Recomputed(x, weight, bias, mean, invstd, relu)
    if y.grad_fn is not None:
        y.grad_fn.recipe = recipe  # the backward's ctx
    setattr(y, RECIPE, recipe)
    return y


@contextmanager
def recomputed_input(x: Tensor) -> Iterator[None]:
    """Inside, autograd saves x (if it has a recipe) as its recipe, run again in backward."""
    recipe: Callable[[], Tensor] | None = getattr(x, RECIPE, None)
    if recipe is None or not torch.is_grad_enabled():
        yield
        return

    # what identifies x, not x itself: autograd keeps the hooks with what they saved
    key = (x.data_ptr(), x.shape, x.stride())

    def pack(t: Tensor) -> Any:
        return recipe if (t.data_ptr(), t.shape, t.stride()) == key else t

    def unpack(saved: Any) -> Tensor:
        if callable(saved) and not isinstance(saved, Tensor):
            with torch.no_grad():
                return saved()
        return saved

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield
