"""The iteration space of a pointwise kernel and the address of every tensor in it.

A kernel walks the output's elements in the output's memory order (so its writes are
coalesced, channels_last included): the output's dims sorted by stride, size-1 dims dropped,
and neighbouring dims merged wherever every tensor allows it (TensorIterator's coalescing).
Each tensor's address is then an `expr.Index` of the linear index `i`: just `i` for a tensor
laid out like the iteration (the case that may be vectorized), else the sum over dims of
coordinate * stride, with stride 0 for broadcast dims. Sizes and strides are constants of the
rendered source, so the compiler turns every division into a multiply and shift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from archgraph.codegen.kernels.cuda.expr import I, Index, const, floordiv, mod, times

DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16",
               torch.float64: "float64"}  # fmt: skip
TORCH_DTYPES = {v: k for k, v in DTYPE_NAMES.items()}


@dataclass(frozen=True)
class Layout:
    """A tensor as a kernel sees it: logical shape, element strides, storage dtype name."""

    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: str = "float32"

    @staticmethod
    def of(t: torch.Tensor) -> Layout:
        return Layout(tuple(t.shape), tuple(t.stride()), DTYPE_NAMES[t.dtype])

    @staticmethod
    def dense(shape: Sequence[int], dtype: str = "float32", channels_last: bool = False) -> Layout:
        order = dense_order(len(shape), channels_last)
        return Layout(tuple(shape), strides_in_order(shape, order), dtype)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


def dense_order(rank: int, channels_last: bool = False) -> tuple[int, ...]:
    """Dims from outermost to innermost in memory: NCHW, or NHWC for channels_last."""
    if channels_last and rank == 4:
        return (0, 2, 3, 1)
    return tuple(range(rank))


def strides_in_order(shape: Sequence[int], order: Sequence[int]) -> tuple[int, ...]:
    """Dense strides with dims laid out in `order` (outermost first)."""
    strides = [0] * len(shape)
    step = 1
    for d in reversed(order):
        strides[d] = step
        step *= max(shape[d], 1)
    return tuple(strides)


def broadcast_strides(layout: Layout, shape: Sequence[int]) -> tuple[int, ...]:
    """The layout's strides seen from a tensor of `shape` (right-aligned, stride 0 where
    broadcast). Raises ValueError when the shapes do not broadcast."""
    rank, own = len(shape), len(layout.shape)
    if own > rank:
        raise ValueError(f"cannot broadcast {list(layout.shape)} to {list(shape)}")
    out = [0] * rank
    for d in range(own):
        size, target = layout.shape[d], shape[rank - own + d]
        if size == target:
            out[rank - own + d] = layout.strides[d] if size != 1 else 0
        elif size != 1:
            raise ValueError(f"cannot broadcast {list(layout.shape)} to {list(shape)}")
    return tuple(out)


def memory_order(layout: Layout) -> tuple[int, ...]:
    """The layout's dims from outermost to innermost in memory (stable for equal strides)."""
    return tuple(sorted(range(len(layout.shape)), key=lambda d: -layout.strides[d]))


@dataclass(frozen=True)
class Iteration:
    """Coalesced iteration dims (outermost first) and each tensor's strides in them
    (outputs first, then inputs, in the order given)."""

    sizes: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...]

    @property
    def numel(self) -> int:
        return math.prod(self.sizes)

    def is_linear(self, k: int) -> bool:
        """Tensor k lies in memory exactly in iteration order: its address is i."""
        return self.strides[k] == strides_in_order(self.sizes, range(len(self.sizes)))

    def index(self, k: int) -> Index:
        """Address (in elements, from the tensor's first element) of tensor k at index i."""
        if self.is_linear(k):
            return I
        terms = const(0)
        inner = 1
        inners = []
        for size in reversed(self.sizes):
            inners.append(inner)
            inner *= size
        inners.reverse()
        for d, (size, stride) in enumerate(zip(self.sizes, self.strides[k], strict=True)):
            if stride == 0:
                continue
            coord = floordiv(I, inners[d])
            if d > 0:
                coord = mod(coord, size)
            terms = terms + times(coord, stride)
        return terms

    def span(self, k: int) -> int:
        """One past the largest address tensor k is read or written at."""
        return 1 + sum((s - 1) * st for s, st in zip(self.sizes, self.strides[k], strict=True))


def iterate(shape: Sequence[int], outputs: Sequence[Layout], inputs: Sequence[Layout],
            order: Sequence[int] | None = None) -> Iteration:  # fmt: skip
    """The iteration over `shape` (the outputs' shape) in the first output's memory order
    (or `order`, outermost first), inputs broadcast to it, dims coalesced."""
    shape = tuple(shape)
    for o in outputs:
        if o.shape != shape:
            raise ValueError(f"output {list(o.shape)} is not the iteration shape {list(shape)}")
    tensors = [o.strides for o in outputs] + [broadcast_strides(x, shape) for x in inputs]
    if order is None:
        order = memory_order(outputs[0])
    dims = [d for d in order if shape[d] != 1]
    sizes: list[int] = []
    strides: list[list[int]] = [[] for _ in tensors]
    for d in dims:
        if sizes and all(st[-1] == t[d] * shape[d] for st, t in zip(strides, tensors, strict=True)):
            sizes[-1] *= shape[d]
            for st, t in zip(strides, tensors, strict=True):
                st[-1] = t[d]
            continue
        sizes.append(shape[d])
        for st, t in zip(strides, tensors, strict=True):
            st.append(t[d])
    if not sizes:  # a single element
        sizes, strides = [1], [[0] for _ in tensors]
    return Iteration(tuple(sizes), tuple(tuple(s) for s in strides))
