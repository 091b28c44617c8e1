"""Each kernel kind, run on the host from the very program and index expressions the C source
is rendered from, against PyTorch's own ops: every registry step forward and backward
(gradcheck in float64), broadcasting operands, fp16/bf16 storage with fp32 arithmetic, the
vectorized/scalar choice, softmax and layer norm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from archgraph.codegen.kernels.cuda.functions import (
    HOST,
    LayerNormFunction,
    SoftmaxFunction,
    aligned,
    forward_kernel,
    run_chain,
)
from archgraph.codegen.kernels.cuda.groups import epilogue_chain, prologue_chain, steps_chain
from archgraph.codegen.kernels.cuda.index import Layout

from archgraph.ops.registry import pointwise_steps
from tests.reference import TORCH_ACTIVATIONS

TORCH_STEP = TORCH_ACTIVATIONS  # PyTorch's own op for each registry step (unfused reference)


def test_every_registry_step_has_a_reference() -> None:
    unary = {name for name, s in pointwise_steps().items() if s.operand == ""}
    assert unary == set(TORCH_STEP)


def _away_from_kinks(t: torch.Tensor) -> torch.Tensor:
    """Inputs at least 0.05 from the non-differentiable points (0, +-3, 6) of the steps."""
    for kink in (0.0, 3.0, -3.0, 6.0):
        near = (t - kink).abs() < 0.05
        t = torch.where(near, t + 0.1, t)
    return t


@pytest.mark.parametrize("name", sorted(TORCH_STEP))
def test_unary_step_forward_and_gradcheck(name: str) -> None:
    torch.manual_seed(0)
    x = _away_from_kinks(torch.randn(3, 4, 5, dtype=torch.float64) * 4)
    chain = steps_chain([(name,)], 1)
    torch.testing.assert_close(run_chain(chain, [x], HOST), TORCH_STEP[name](x))
    xg = x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: run_chain(chain, [t], HOST), (xg,))
    # and the analytic gradient is PyTorch's
    (got,) = torch.autograd.grad(run_chain(chain, [xg], HOST).sum(), xg)
    (want,) = torch.autograd.grad(TORCH_STEP[name](xg).sum(), xg)
    torch.testing.assert_close(got, want)


def test_chain_with_broadcast_operands_gradcheck() -> None:
    """x * sigmoid(x) + bias(last dim), then * a [N, 1, W] gate, scaled, relu6: every operand's
    gradient, broadcast ones summed back to their shapes."""
    torch.manual_seed(1)
    steps = [("sigmoid",), ("mul", 0), ("add", 1), ("mul", 2), ("scale", 0.5), ("relu6",)]
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    gate = torch.randn(2, 1, 4, dtype=torch.float64, requires_grad=True)
    chain = steps_chain(steps, 3)

    def unfused(x: torch.Tensor, b: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return F.relu6(((torch.sigmoid(x) * x + b) * g) * 0.5)

    torch.testing.assert_close(run_chain(chain, [x, bias, gate], HOST), unfused(x, bias, gate))
    assert torch.autograd.gradcheck(lambda *t: run_chain(chain, list(t), HOST), (x, bias, gate))


def test_affine_step_is_an_eval_batchnorm() -> None:
    torch.manual_seed(2)
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64, requires_grad=True)
    mean, var = torch.randn(5, dtype=torch.float64), torch.rand(5, dtype=torch.float64) + 0.5
    w, b = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    scale = w / torch.sqrt(var + 1e-5)
    shift = b - mean * scale
    chain = steps_chain([("affine",), ("relu",)], 1)
    operands = [x, scale.view(1, 5, 1, 1), shift.view(1, 5, 1, 1)]
    want = torch.relu(F.batch_norm(x, mean, var, w, b, training=False, eps=1e-5))
    torch.testing.assert_close(run_chain(chain, operands, HOST), want)
    assert torch.autograd.gradcheck(lambda t: run_chain(chain, [t, *operands[1:]], HOST), (x,))


@pytest.mark.parametrize("act", ["relu", "gelu", "silu", "none"])
def test_epilogue_and_prologue_chains(act: str) -> None:
    torch.manual_seed(3)
    y = torch.randn(2, 6, 4, 4, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    res = torch.randn(2, 6, 4, 4, dtype=torch.float64, requires_grad=True)
    chain = epilogue_chain(True, True, act)
    ref = y + bias.view(1, 6, 1, 1) + res
    ref = ref if act == "none" else TORCH_STEP[act](ref)
    got = run_chain(chain, [y, bias.view(1, 6, 1, 1), res], HOST)
    torch.testing.assert_close(got, ref)

    def fn(a: torch.Tensor, b: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return run_chain(chain, [a, b.view(1, 6, 1, 1), r], HOST)

    assert torch.autograd.gradcheck(fn, (y, bias, res))
    if act in ("relu", "none"):
        pro = prologue_chain(True, act)
        s, t = torch.randn(6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
        want = y * s.view(1, 6, 1, 1) + t.view(1, 6, 1, 1)
        want = want if act == "none" else torch.relu(want)
        got = run_chain(pro, [y, s.view(1, 6, 1, 1), t.view(1, 6, 1, 1)], HOST)
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_storage_computes_in_fp32(dtype: torch.dtype) -> None:
    """Loads widen to fp32, the chain runs in fp32, one rounding at the store: PyTorch's
    fp32 result rounded once."""
    torch.manual_seed(4)
    x = torch.randn(4, 8, 16).to(dtype)
    b = torch.randn(16).to(dtype)
    chain = steps_chain([("add", 1), ("gelu",), ("scale", 3.0)], 2)
    got = run_chain(chain, [x, b], HOST)
    assert got.dtype == dtype
    want = (F.gelu(x.float() + b.float()) * 3.0).to(dtype)
    # one rounding of (nearly) the same fp32 value: at most one unit in the last place apart
    torch.testing.assert_close(got, want, rtol=torch.finfo(dtype).eps, atol=1e-5)


def test_vectorized_and_scalar_kernels_agree_and_misalignment_falls_back() -> None:
    torch.manual_seed(5)
    storage = torch.randn(4 * 8 * 8 + 1)
    x = storage[1:].view(4, 8, 8)  # 4 bytes past a 16-byte boundary
    chain = steps_chain([("tanh",)], 1)
    kernel = forward_kernel(chain, (Layout.of(x),), Layout.of(torch.empty(4, 8, 8)))
    assert kernel.vec == 4 and kernel.alignment() == 16
    out = torch.empty(4, 8, 8)
    assert out.data_ptr() % 16 == 0
    assert aligned(kernel, [x], [out]).vec == 1
    assert aligned(kernel, [x.clone()], [out]).vec == 4
    a, b = torch.empty(4, 8, 8), torch.empty(4, 8, 8)
    HOST.pointwise(kernel, [x], [a])
    HOST.pointwise(kernel.scalar(), [x], [b])
    torch.testing.assert_close(a, torch.tanh(x), rtol=0, atol=0)
    torch.testing.assert_close(b, torch.tanh(x), rtol=0, atol=0)


@pytest.mark.parametrize("length", [1, 7, 197, 384, 2500])
def test_softmax_rows(length: int) -> None:
    torch.manual_seed(6)
    x = torch.randn(3, 2, length, dtype=torch.float64, requires_grad=True) * 5
    torch.testing.assert_close(SoftmaxFunction.apply(x, HOST), torch.softmax(x, -1))
    if length <= 197:
        xs = x.detach()[:, :, : min(length, 20)].clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda t: SoftmaxFunction.apply(t, HOST), (xs,))


@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, False)])
def test_layernorm_rows(affine: tuple[bool, bool]) -> None:
    torch.manual_seed(7)
    d = 24
    x = torch.randn(2, 5, d, dtype=torch.float64, requires_grad=True) * 3 + 1
    w = torch.randn(d, dtype=torch.float64, requires_grad=True) if affine[0] else None
    b = torch.randn(d, dtype=torch.float64, requires_grad=True) if affine[1] else None
    torch.testing.assert_close(LayerNormFunction.apply(x, w, b, 1e-5, HOST),
                               F.layer_norm(x, (d,), w, b, 1e-5))  # fmt: skip
    args = tuple(t for t in (x, w, b) if t is not None)

    def fn(*ts: torch.Tensor) -> torch.Tensor:
        it = iter(ts)
        x_ = next(it)
        w_ = next(it) if w is not None else None
        b_ = next(it) if b is not None else None
        return LayerNormFunction.apply(x_, w_, b_, 1e-5, HOST)

    assert torch.autograd.gradcheck(fn, args)


def test_layernorm_bf16_storage() -> None:
    torch.manual_seed(8)
    x = torch.randn(4, 64).to(torch.bfloat16)
    w, b = torch.randn(64).to(torch.bfloat16), torch.randn(64).to(torch.bfloat16)
    got = LayerNormFunction.apply(x, w, b, 1e-6, HOST)
    want = F.layer_norm(x.float(), (64,), w.float(), b.float(), 1e-6)
    torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("name", ["sigmoid", "silu", "tanh", "gelu", "gelu_tanh", "hardswish"])
def test_saturated_gradients_are_finite_and_nan_propagates(name: str) -> None:
    """Far in the tails expf overflows inside the derivative formula; the gradient must be
    PyTorch's (0 or the linear tail's 1), and a NaN input must still give NaN."""
    x = torch.tensor([-1e6, -200.0, -100.0, -30.0, 30.0, 100.0, 1e6, float("nan")],
                     requires_grad=True)  # fmt: skip
    chain = steps_chain([(name,)], 1)
    (got,) = torch.autograd.grad(run_chain(chain, [x], HOST).sum(), x)
    (want,) = torch.autograd.grad(TORCH_STEP[name](x).sum(), x)
    torch.testing.assert_close(got[:-1], want[:-1])
    assert torch.isnan(got[-1])  # (PyTorch's hardswish gives a number there; we keep NaN)
