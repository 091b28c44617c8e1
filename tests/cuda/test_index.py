"""The rendered kernels' index arithmetic, checked on the host: for broadcasting and strided
layouts (permuted, channels_last, slices of a larger buffer, expanded), the address expressions
of a kernel, evaluated in Python, pick for every output element the input elements PyTorch's
strides give, and write every output element exactly once. The C text of each expression is
evaluated too, so what NVRTC compiles is what was checked."""

from __future__ import annotations

import re

import torch
from archgraph.codegen.kernels.cuda import expr as E
from archgraph.codegen.kernels.cuda.groups import COPY
from archgraph.codegen.kernels.cuda.index import Layout
from archgraph.codegen.kernels.cuda.pointwise import (
    Chain,
    Step,
    forward_program,
    make_kernel,
    run_host,
)
from hypothesis import given, settings
from hypothesis import strategies as st

ADD = Chain(("a", "b"), (Step("add", (("y", 1),)),))


def reference_addresses(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """PyTorch's address (elements from t's first element) of every element of t broadcast
    to `shape`, in logical (row-major) order."""
    span = 1 + sum((s - 1) * st for s, st in zip(t.shape, t.stride(), strict=True))
    addr = torch.as_strided(torch.arange(max(span, 1)), t.shape, t.stride())
    return addr.broadcast_to(shape).reshape(-1)


def c_eval(e: E.Index, i: torch.Tensor) -> torch.Tensor:
    """Evaluate the C text of an index expression (non-negative ints: / is floor division)."""
    text = re.sub(r"(?<=[\w)]) / ", " // ", E.index_c(e))
    return eval(text, {"i": i}) + 0 * i  # noqa: S307 - our own rendered expression


def check_kernel_addresses(out: torch.Tensor, inputs: list[torch.Tensor]) -> None:
    kernel = make_kernel("t", forward_program(COPY if len(inputs) == 1 else ADD),
                         [Layout.of(t) for t in inputs], [Layout.of(out)])  # fmt: skip
    i = torch.arange(kernel.numel)
    out_addr = E.index_eval(kernel.out_index(0), i)
    assert torch.equal(c_eval(kernel.out_index(0), i), out_addr)
    ref_out = reference_addresses(out, out.shape)
    # every output element written exactly once
    assert torch.equal(out_addr.sort().values, ref_out.sort().values)
    lookup = torch.full((int(ref_out.max()) + 1,), -1, dtype=torch.long)
    for k, t in enumerate(inputs):
        in_addr = E.index_eval(kernel.in_index(k), i)
        assert torch.equal(c_eval(kernel.in_index(k), i), in_addr)
        lookup[ref_out] = reference_addresses(t, out.shape)
        assert torch.equal(lookup[out_addr], in_addr), f"input {k}: {E.index_c(kernel.in_index(k))}"
    # and the whole kernel, run on the host, computes what PyTorch does
    expected = (inputs[0] + inputs[1] if len(inputs) == 2 else inputs[0]).expand(out.shape)
    run_host(kernel, inputs, [out])
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@st.composite
def layouts(draw: st.DrawFn) -> tuple[torch.Tensor, list[torch.Tensor]]:
    rank = draw(st.integers(1, 5))
    shape = [draw(st.integers(1, 5)) for _ in range(rank)]
    out = _strided(draw, shape, slice_ok=True)
    inputs = []
    for _ in range(draw(st.integers(1, 2))):
        keep = draw(st.integers(1, rank))  # broadcasting drops leading dims ...
        ishape = [
            1 if draw(st.booleans()) and draw(st.booleans()) else s for s in shape[rank - keep :]
        ]
        inputs.append(_strided(draw, ishape, slice_ok=True))  # ... and sets dims to 1
    return out, inputs


def _strided(draw: st.DrawFn, shape: list[int], slice_ok: bool) -> torch.Tensor:
    """A tensor of `shape` in a random memory order, possibly a slice of a larger one, or an
    expanded (stride-0) view."""
    order = draw(st.permutations(range(len(shape))))
    grow = [draw(st.integers(0, 2)) if slice_ok else 0 for _ in shape]
    big = [s + g for s, g in zip(shape, grow, strict=True)]
    base = torch.randn([big[d] for d in order]).permute(
        *[order.index(d) for d in range(len(shape))]
    )
    t = base
    for d, g in enumerate(grow):
        start = draw(st.integers(0, g))
        t = t.narrow(d, start, shape[d])
    if draw(st.integers(0, 5)) == 0:  # expanded along a size-1 dim
        ones = [d for d, s in enumerate(shape) if s == 1]
        if ones:
            target = list(shape)
            t = t.expand(target)
    return t


@settings(max_examples=300, deadline=None)
@given(layouts())
def test_random_strided_broadcast_layouts(case: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    out, inputs = case
    check_kernel_addresses(out, inputs if len(inputs) == 2 else inputs[:1])


def test_channels_last_output_with_nchw_residual_and_bias() -> None:
    y = torch.randn(2, 8, 5, 6).to(memory_format=torch.channels_last)
    residual = torch.randn(2, 8, 5, 6)
    bias = torch.randn(8).view(1, 8, 1, 1)
    out = torch.empty_like(y)
    check_kernel_addresses(out, [y, residual])
    check_kernel_addresses(out, [y, bias])


def test_slice_of_a_dense_block_buffer() -> None:
    for fmt in (torch.contiguous_format, torch.channels_last):
        buf = torch.zeros(2, 20, 3, 4).contiguous(memory_format=fmt)
        value = torch.randn(2, 6, 3, 4).contiguous(memory_format=fmt)
        check_kernel_addresses(buf.narrow(1, 8, 6), [value])
        assert buf[:, :8].abs().sum() == 0 and buf[:, 14:].abs().sum() == 0


def test_last_dim_bias_and_transposed_input() -> None:
    x = torch.randn(4, 7, 10).transpose(0, 1)  # [7, 4, 10], not contiguous
    out = torch.empty(7, 4, 10)
    check_kernel_addresses(out, [x, torch.randn(10)])


def test_contiguous_operands_index_by_i_and_vectorize() -> None:
    x = torch.randn(2, 8, 4, 4)
    kernel = make_kernel("t", forward_program(ADD), [Layout.of(x), Layout.of(x)], [Layout.of(x)])
    assert kernel.iteration.sizes == (256,)
    assert kernel.in_index(0) == E.I and kernel.vec == 4
    assert kernel.vector_inputs() == (0, 1)
    bias = torch.randn(1, 8, 1, 1)
    kernel = make_kernel("t", forward_program(ADD), [Layout.of(x), Layout.of(bias)], [Layout.of(x)])
    assert E.index_c(kernel.in_index(1)) == "((i / 16) % 8)"
    assert kernel.vector_inputs() == (0,)


def test_large_tensors_use_64_bit_indices() -> None:
    big = Layout((2**16, 2**16), (2**16, 1))
    kernel = make_kernel("t", forward_program(COPY), [big], [big])
    assert kernel.index_type == "long long"
    assert "const long long i" in kernel.source
    small = Layout((4, 4), (4, 1))
    assert make_kernel("t", forward_program(COPY), [small], [small]).index_type == "int"
