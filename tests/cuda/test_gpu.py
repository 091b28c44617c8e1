"""On a GPU: the generated kernels against the unfused ops (fp32 to 1e-4, bf16 to 2e-2
relative), their gradients, PyTorch's stream, zero-copy slice writes, and whole -O2 zoo models
against -O0. Skipped with a reason where there is no CUDA device or no CuPy."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F
from archgraph.codegen.kernels.cuda import dispatch, runtime
from archgraph.codegen.kernels.cuda.functions import (
    CUDA,
    LayerNormFunction,
    SoftmaxFunction,
    run_chain,
)
from archgraph.codegen.kernels.cuda.groups import epilogue_chain, steps_chain

import archgraph
from tests.cuda.test_groups import GROUP_OPS, _distinct_groups, check_group
from tests.cuda.test_kernels_host import TORCH_STEP

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch"),
    pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="CuPy is not installed"),
]
TOL = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 2e-2}


def _close(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> None:
    tol = TOL[dtype]
    scale = want.abs().max().item()
    torch.testing.assert_close(got.float(), want.float(), rtol=tol, atol=tol * max(scale, 1e-3))


@pytest.fixture(autouse=True)
def _private_cache_and_exact_fp32(tmp_path, monkeypatch):  # noqa: ANN001, ANN202
    """A fresh kernel cache per test; convolutions and matmuls in true fp32 (not TF32), so
    that 1e-4 measures our kernels."""
    monkeypatch.setenv("ARCHGRAPH_KERNEL_CACHE", str(tmp_path / "kernels"))
    runtime._MODULES.clear()
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)


def test_the_runtime_sees_the_gpu() -> None:
    assert runtime.available()
    x = torch.randn(4, device="cuda")
    assert dispatch.launcher_for(x) is CUDA


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(TORCH_STEP))
def test_step_kernels_match_torch(name: str, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    x = (torch.randn(3, 37, 41, device="cuda") * 4).to(dtype).requires_grad_()
    chain = steps_chain([(name,)], 1)
    out = run_chain(chain, [x], CUDA)
    ref_x = x.detach().float().requires_grad_()
    want = TORCH_STEP[name](ref_x)
    _close(out, want, dtype)
    g = torch.randn_like(want)
    out.backward(g.to(dtype))
    want.backward(g)
    _close(x.grad, ref_x.grad, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv_epilogue_bias_residual_relu(dtype: torch.dtype, channels_last: bool) -> None:
    torch.manual_seed(1)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    y = torch.randn(8, 64, 28, 28, device="cuda", dtype=dtype).contiguous(memory_format=fmt)
    bias = torch.randn(64, device="cuda", dtype=dtype)
    res = torch.randn(8, 64, 28, 28, device="cuda", dtype=dtype)
    leaves = [t.clone().requires_grad_() for t in (y, bias, res)]
    out = run_chain(
        epilogue_chain(True, True, "relu"),
        [leaves[0], leaves[1].view(1, -1, 1, 1), leaves[2]],
        CUDA,
    )
    refs = [t.float().clone().requires_grad_() for t in (y, bias, res)]
    want = torch.relu(refs[0] + refs[1].view(1, -1, 1, 1) + refs[2])
    _close(out, want, dtype)
    assert out.is_contiguous(memory_format=fmt)
    g = torch.randn_like(want)
    out.backward(g.to(dtype))
    want.backward(g)
    for a, b in zip(leaves, refs, strict=True):
        _close(a.grad, b.grad, dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_bias_gelu_softmax_layernorm(dtype: torch.dtype) -> None:
    torch.manual_seed(2)
    x = torch.randn(4, 197, 384, device="cuda", dtype=dtype)
    b = torch.randn(384, device="cuda", dtype=dtype)
    _close(
        run_chain(epilogue_chain(True, False, "gelu"), [x, b], CUDA),
        F.gelu(x.float() + b.float()),
        dtype,
    )
    s = torch.randn(2, 6, 197, 197, device="cuda", dtype=dtype, requires_grad=True)
    sr = s.detach().float().requires_grad_()
    got, want = SoftmaxFunction.apply(s, CUDA), torch.softmax(sr, -1)
    _close(got, want, dtype)
    g = torch.randn_like(want)
    got.backward(g.to(dtype))
    want.backward(g)
    _close(s.grad, sr.grad, dtype)
    w = torch.randn(384, device="cuda", dtype=dtype, requires_grad=True)
    lb = torch.randn(384, device="cuda", dtype=dtype, requires_grad=True)
    xl = x.clone().requires_grad_()
    refs = [t.detach().float().requires_grad_() for t in (xl, w, lb)]
    got = LayerNormFunction.apply(xl, w, lb, 1e-6, CUDA)
    want = F.layer_norm(refs[0], (384,), refs[1], refs[2], 1e-6)
    _close(got, want, dtype)
    g = torch.randn_like(want)
    got.backward(g.to(dtype))
    want.backward(g)
    for a, r in zip((xl, w, lb), refs, strict=True):
        _close(a.grad, r.grad, dtype)


def test_kernels_run_on_torchs_current_stream() -> None:
    x = torch.randn(1 << 22, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        y = run_chain(steps_chain([("relu",)], 1), [x], CUDA)
        # queued behind a slow op on the same stream: correct only if ordered on it
        z = run_chain(steps_chain([("scale", 2.0)], 1), [y], CUDA)
    torch.cuda.current_stream().wait_stream(side)
    torch.testing.assert_close(z, torch.relu(x) * 2)


def test_dense_buffer_slice_is_written_in_place() -> None:
    buf = torch.zeros(2, 32, 14, 14, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randn(2, 8, 14, 14, device="cuda").contiguous(memory_format=torch.channels_last)
    ptr = buf.data_ptr()
    with torch.no_grad():
        out = dispatch.buffer_write(buf, y, 16)
    assert out.data_ptr() == ptr
    torch.testing.assert_close(buf[:, 16:24], y)
    assert buf[:, :16].abs().sum() == 0 and buf[:, 24:].abs().sum() == 0


def test_kernels_are_cached_in_process_and_on_disk(tmp_path) -> None:  # noqa: ANN001
    x = torch.randn(1000, device="cuda")
    run_chain(steps_chain([("tanh",)], 1), [x], CUDA)
    cubins = list((tmp_path / "kernels").glob("*.cubin"))
    assert len(cubins) == 1
    loaded = len(runtime._MODULES)
    run_chain(steps_chain([("tanh",)], 1), [x + 1], CUDA)
    assert len(runtime._MODULES) == loaded


def test_every_zoo_group_on_the_gpu(zoo_o2) -> None:  # noqa: ANN001
    """The CPU-side group check with the modules and inputs on the GPU (fp32, 1e-4)."""
    groups = _distinct_groups(zoo_o2)
    assert {g[1] for g in groups} == set(GROUP_OPS)
    for label, op, args, ins in groups:
        check_group(label, op, args, ins, backward=True, device="cuda")


@pytest.mark.parametrize("name", archgraph.zoo())
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_zoo_model_on_gpu_matches_O0(name: str, dtype: torch.dtype) -> None:
    graph = archgraph.load(name)
    m0 = archgraph.compile(graph, 0).eval().cuda()
    m2 = archgraph.compile(graph, 2).eval().cuda().to(dtype)
    torch.manual_seed(3)
    inputs = []
    for i in graph.inputs:
        t = graph[i].type
        if t.dtype == "int64":
            inputs.append(torch.randint(0, 2, t.shape, device="cuda"))
        else:
            inputs.append(torch.randn(t.shape, device="cuda"))
    with torch.no_grad():
        want = m0(*inputs)
        got = m2(*[x.to(dtype) if x.is_floating_point() else x for x in inputs])
    tol = TOL[dtype] * (10 if dtype == torch.bfloat16 else 1)  # bf16 end to end through a network
    torch.testing.assert_close(got.float(), want, rtol=tol, atol=tol * want.abs().max().item())
