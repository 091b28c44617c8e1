"""The CPU path of the fused ops against plain torch: every pointwise step, the fused conv and
linear (plain and oneDNN-prepacked, with prologue, residual and each activation, chunked
prologues), the packed-weight cache, autograd, and the dense-block buffer."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from archgraph.codegen.kernels import cpu
from archgraph.codegen.runtimes import FusedConv2d, FusedLinear, FusedPointwise

from archgraph.ir.types import TensorType
from archgraph.ops.fused import unary_steps
from archgraph.ops.fused_conv import ACTIVATIONS
from archgraph.ops.registry import get_op, pointwise_steps
from tests.reference import TORCH_ACTIVATIONS

REFERENCE = {**TORCH_ACTIVATIONS, "none": lambda t: t}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


UNARY_STEPS = unary_steps()


def test_every_step_has_a_cpu_path_and_a_reference() -> None:
    assert set(UNARY_STEPS) == set(TORCH_ACTIVATIONS)
    assert all(pointwise_steps()[u].cpu_inplace is not None for u in UNARY_STEPS)
    assert set(ACTIVATIONS) == set(REFERENCE)
    assert {s.operand for s in pointwise_steps().values()} == {"", "float", "input", "params"}


@pytest.mark.parametrize("grad", [False, True])
def test_pointwise_chain_equals_step_by_step_torch(grad: bool) -> None:
    x = torch.randn(2, 3, 4, 4, generator=_gen(1), requires_grad=grad)
    y = torch.randn(2, 3, 4, 4, generator=_gen(2))
    gate = torch.randn(2, 3, 1, 1, generator=_gen(3))
    scale, shift = torch.rand(3, generator=_gen(4)) + 0.5, torch.randn(3, generator=_gen(5))
    steps = (
        ("affine",),
        ("add", 1),
        *((u,) for u in UNARY_STEPS),
        ("scale", 0.5),
        ("mul", 2),
        ("mul", 0),
    )
    before = (x.detach().clone(), y.clone())
    with torch.set_grad_enabled(grad):
        got = cpu.pointwise_chain(steps, [x, y, gate], {0: (scale, shift)})
    expected = x * scale.view(1, 3, 1, 1) + shift.view(1, 3, 1, 1) + y
    for u in UNARY_STEPS:
        expected = REFERENCE[u](expected)
    expected = expected * 0.5 * gate * x
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(x.detach(), before[0])  # inputs untouched by in-place steps
    torch.testing.assert_close(y, before[1])
    if grad:
        got.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()


def test_pointwise_chain_broadcast_grows_the_running_value() -> None:
    s = torch.randn(2, 3, 1, 1, generator=_gen(1))
    x = torch.randn(2, 3, 4, 4, generator=_gen(2))
    with torch.no_grad():
        got = cpu.pointwise_chain((("sigmoid",), ("mul", 1), ("relu",)), [s, x], {})
    torch.testing.assert_close(got, F.relu(torch.sigmoid(s) * x))


def test_fused_pointwise_module_holds_affine_buffers() -> None:
    args = get_op("fused_pointwise").normalize_args({"steps": [["affine"], ["relu"]]})
    module = FusedPointwise(args["steps"], [TensorType((1, 3, 2, 2))] * 3)
    assert list(module.state_dict()) == ["step0.scale", "step0.shift"]


def _conv_module(
    prepack: bool, act: str, residual: bool, pre: bool, groups: int = 1
) -> FusedConv2d:
    op = get_op("conv2d_fused")
    args = op.normalize_args(dict(out_channels=6, kernel_size=3, padding=1, groups=groups,
                                  activation=act, residual=residual, pre_affine=pre,
                                  pre_activation="relu" if pre else "none", prepack=prepack))  # fmt: skip
    ins = [TensorType((2, 6, 5, 5))] * (2 if residual else 1)
    module = FusedConv2d(args, ins)
    gen = _gen(7)
    state = {
        k: torch.randn(spec.shape, generator=gen) * 0.3 for k, spec in op.params(args, ins).items()
    }
    module.load_state_dict(state, assign=True)
    return module


def _conv_reference(m: FusedConv2d, x: torch.Tensor, r: torch.Tensor | None) -> torch.Tensor:
    if m.pre_scale is not None:
        x = F.relu(x * m.pre_scale.view(1, -1, 1, 1) + m.pre_shift.view(1, -1, 1, 1))
    y = F.conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
    return REFERENCE[m.activation](y + r if r is not None else y)


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("prepack", [False, True])
@pytest.mark.parametrize("residual", [False, True])
def test_fused_conv_equals_conv_then_epilogue(act: str, prepack: bool, residual: bool) -> None:
    m = _conv_module(prepack, act, residual, pre=True)
    x = torch.randn(2, 6, 5, 5, generator=_gen(8))
    r = torch.randn(2, 6, 5, 5, generator=_gen(9)) if residual else None
    with torch.inference_mode():
        got = m(x, r) if residual else m(x)
    torch.testing.assert_close(got, _conv_reference(m, x, r), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("act", ["relu", "silu"])
def test_chunked_prologue_equals_whole(act: str, monkeypatch: pytest.MonkeyPatch) -> None:
    m = _conv_module(True, act, residual=True, pre=True)
    x = torch.randn(2, 6, 5, 5, generator=_gen(10))
    r = torch.randn(2, 6, 5, 5, generator=_gen(11))
    monkeypatch.setattr(cpu, "PROLOGUE_CHUNK_BYTES", x.numel() * 4 // 3)
    assert len(cpu.prologue_chunks(x, 1)) == 3
    with torch.inference_mode():
        got = m(x, r)
    torch.testing.assert_close(got, _conv_reference(m, x, r), rtol=1e-4, atol=1e-5)


def test_packed_weights_follow_weight_updates_batch_sizes_and_copies() -> None:
    m = _conv_module(True, "relu", residual=False, pre=False, groups=2)
    for batch in (1, 3, 1):
        x = torch.randn(batch, 6, 5, 5, generator=_gen(batch))
        with torch.inference_mode():
            torch.testing.assert_close(m(x), _conv_reference(m, x, None), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        m.weight.mul_(-2.0)  # in place: the cached packing must not be reused
    with torch.inference_mode():
        torch.testing.assert_close(m(x), _conv_reference(m, x, None), rtol=1e-4, atol=1e-5)
    twin = copy.deepcopy(m)
    with torch.no_grad():
        twin.weight.zero_()
    with torch.inference_mode():
        assert float(twin(x).abs().max()) == float(F.relu(twin.bias).max())


def test_fused_conv_trains_through_the_plain_path() -> None:
    m = _conv_module(True, "relu", residual=False, pre=True)
    x = torch.randn(2, 6, 5, 5, generator=_gen(12), requires_grad=True)
    m(x).sum().backward()
    ref_x = x.detach().clone().requires_grad_()
    _conv_reference(m, ref_x, None).sum().backward()
    torch.testing.assert_close(x.grad, ref_x.grad)
    assert m.weight.grad is not None


def _parts_module(prepack: bool, act: str, residual: bool, widths: tuple[int, ...]) -> FusedConv2d:
    op = get_op("conv2d_fused")
    args = op.normalize_args(dict(out_channels=5, kernel_size=3, padding=1, activation=act,
                                  residual=residual, prepack=prepack, parts=len(widths)))  # fmt: skip
    ins = [TensorType((2, c, 6, 6)) for c in widths] + [TensorType((2, 5, 6, 6))] * residual
    module = FusedConv2d(args, ins)
    gen = _gen(13)
    state = {
        k: torch.randn(spec.shape, generator=gen) * 0.3 for k, spec in op.params(args, ins).items()
    }
    module.load_state_dict(state, assign=True)
    assert module.weight.shape == (5, sum(widths), 3, 3)
    return module


@pytest.mark.parametrize("act", ["none", "relu", "silu"])
@pytest.mark.parametrize("prepack", [False, True])
@pytest.mark.parametrize("residual", [False, True])
def test_conv_over_parts_equals_conv_of_the_concatenation(
    act: str, prepack: bool, residual: bool
) -> None:
    widths = (3, 1, 4)
    m = _parts_module(prepack, act, residual, widths)
    parts = [torch.randn(2, c, 6, 6, generator=_gen(20 + i)) for i, c in enumerate(widths)]
    r = torch.randn(2, 5, 6, 6, generator=_gen(30)) if residual else None
    with torch.inference_mode():
        got = m(*parts, *([r] if residual else []))
    expected = _conv_reference(m, torch.cat(parts, 1), r)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_conv_over_parts_trains_like_the_concatenation() -> None:
    widths = (2, 4)
    m = _parts_module(True, "relu", residual=False, widths=widths)
    parts = [
        torch.randn(2, c, 6, 6, generator=_gen(40 + i), requires_grad=True)
        for i, c in enumerate(widths)
    ]
    m(*parts).square().sum().backward()
    ref_parts = [p.detach().clone().requires_grad_() for p in parts]
    ref_weight = m.weight.detach().clone().requires_grad_()
    y = F.relu(F.conv2d(torch.cat(ref_parts, 1), ref_weight, m.bias.detach(), 1, 1))
    y.square().sum().backward()
    for p, q in zip(parts, ref_parts, strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    torch.testing.assert_close(m.weight.grad, ref_weight.grad)


@pytest.mark.parametrize("grad", [False, True])
def test_conv3d_parts_equals_conv3d_of_the_concatenation(grad: bool) -> None:
    from archgraph.codegen.runtimes import Conv3dParts

    op = get_op("conv3d_parts")
    args = op.normalize_args(dict(out_channels=4, kernel_size=3, padding=1, parts=2))
    ins = [TensorType((2, 3, 5, 6, 6)), TensorType((2, 2, 5, 6, 6))]
    m = Conv3dParts(args, ins)
    gen = _gen(50)
    state = {k: torch.randn(spec.shape, generator=gen) for k, spec in op.params(args, ins).items()}
    m.load_state_dict(state, assign=True)
    assert m.weight.shape == (4, 5, 3, 3, 3)
    parts = [
        torch.randn(t.shape, generator=_gen(51 + i), requires_grad=grad) for i, t in enumerate(ins)
    ]
    ref_parts = [p.detach().clone().requires_grad_(grad) for p in parts]
    ref_weight = m.weight.detach().clone().requires_grad_(grad)
    expected = F.conv3d(torch.cat(ref_parts, 1), ref_weight, m.bias.detach(), padding=1)
    if grad:
        got = m(*parts)
        got.square().sum().backward()
        expected.square().sum().backward()
        for p, q in zip(parts, ref_parts, strict=True):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(m.weight.grad, ref_weight.grad, rtol=1e-4, atol=1e-4)
    else:
        with torch.inference_mode():
            got = m(*parts)
    torch.testing.assert_close(got.detach(), expected.detach(), rtol=1e-4, atol=1e-4)


def test_conv_parts_must_differ_only_in_channels() -> None:
    from archgraph.ops.registry import ShapeMismatch

    op = get_op("conv2d_fused")
    args = op.normalize_args(dict(out_channels=5, kernel_size=3, parts=2))
    with pytest.raises(ShapeMismatch, match="differ only in channels"):
        op.infer(args, [TensorType((2, 3, 6, 6)), TensorType((2, 3, 5, 6))])
    with pytest.raises(ShapeMismatch, match="no prologue"):
        op.infer(dict(args, pre_affine=True), [TensorType((2, 3, 6, 6))] * 2)
    with pytest.raises(ShapeMismatch, match="not grouped"):
        op.infer(dict(args, groups=3), [TensorType((2, 3, 6, 6))] * 2)


@pytest.mark.parametrize("act", ["none", "relu", "gelu"])
@pytest.mark.parametrize("residual", [False, True])
def test_fused_linear_equals_linear_then_epilogue(act: str, residual: bool) -> None:
    op = get_op("linear_fused")
    args = op.normalize_args(dict(out_features=7, activation=act, residual=residual, prepack=True))
    ins = [TensorType((2, 5, 4)), TensorType((2, 5, 7))][: 2 if residual else 1]
    m = FusedLinear(args, ins)
    gen = _gen(13)
    m.load_state_dict(
        {k: torch.randn(s.shape, generator=gen) for k, s in op.params(args, ins).items()},
        assign=True,
    )
    x = torch.randn(2, 5, 4, generator=gen)
    r = torch.randn(2, 5, 7, generator=gen) if residual else None
    with torch.inference_mode():
        got = m(x, r) if residual else m(x)
    y = F.linear(x, m.weight, m.bias)
    torch.testing.assert_close(
        got, REFERENCE[act](y + r if r is not None else y), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("channels_last", [False, True])
def test_buffer_writes_give_the_concatenation(channels_last: bool) -> None:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    parts = [
        torch.randn(2, c, 3, 3, generator=_gen(c)).contiguous(memory_format=fmt) for c in (4, 2, 3)
    ]
    buf = cpu.buffer_init(parts[0], 9)
    assert buf.is_contiguous(memory_format=fmt)
    prefix = buf.narrow(1, 0, 4)
    offset = 4
    for p in parts[1:]:
        buf = cpu.buffer_write(buf, p, offset)
        offset += p.shape[1]
    torch.testing.assert_close(buf, torch.cat(parts, 1))
    torch.testing.assert_close(prefix, parts[0])  # an earlier view keeps its contents
