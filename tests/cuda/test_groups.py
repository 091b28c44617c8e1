"""Every fused group of every zoo spec at -O2 (each distinct op/args/input types once) equals
the unfused ops it stands for, on random inputs, forward and backward: through the CPU path
(what runs on the CPU, and the reference semantics) and through the generated kernels run on
the host (`simulate()`: the CUDA path's programs and index expressions, evaluated in torch).
Small groups of every configuration are gradchecked in float64 through both paths."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from archgraph.codegen.kernels.cuda import dispatch
from archgraph.codegen.runtimes import runtime_of
from torch import nn

from archgraph.ir.types import TensorType
from archgraph.ops.registry import get_op
from tests.cuda.test_kernels_host import TORCH_STEP

Tensor = torch.Tensor
GROUP_OPS = ("fused_pointwise", "conv2d_fused", "conv3d_parts", "linear_fused", "buffer_init",
             "buffer_write")  # fmt: skip


# ---- the unfused ops, in plain PyTorch ---------------------------------------------------------


def _act(x: Tensor, name: str) -> Tensor:
    return x if name == "none" else TORCH_STEP[name](x)


def _per_channel(v: Tensor, x: Tensor) -> Tensor:
    return v.view(1, -1, *([1] * (x.dim() - 2)))


def unfused_pointwise(args: dict[str, Any], xs: list[Tensor], p: dict[str, Tensor],
                      apart: bool = False) -> Tensor:  # fmt: skip
    acc = xs[0]
    for i, step in enumerate(args["steps"]):
        name = step[0]
        if name in TORCH_STEP:
            acc = TORCH_STEP[name](acc)
        elif name == "scale":
            acc = acc * step[1]
        elif name in ("add", "mul"):
            acc = acc + xs[step[1]] if name == "add" else acc * xs[step[1]]
        else:  # affine: an eval-mode batchnorm with mean 0 and variance 1 - eps
            scale, shift = p[f"step{i}.scale"], p[f"step{i}.shift"]
            ones = torch.ones_like(scale)
            acc = F.batch_norm(acc, torch.zeros_like(scale), ones - 1e-5, scale, shift, False,
                               0.0, 1e-5)  # fmt: skip
    return acc


def unfused_conv(args: dict[str, Any], xs: list[Tensor], p: dict[str, Tensor],
                 apart: bool = False) -> Tensor:  # fmt: skip
    parts = args["parts"]  # a conv over parts reads their concatenation, made here
    x = torch.cat(xs[:parts], 1) if parts > 1 else xs[0]
    if args["pre_affine"]:
        scale, shift = _per_channel(p["pre_scale"], x), _per_channel(p["pre_shift"], x)
        x = x * scale + shift if apart else torch.addcmul(shift, x, scale)
    x = _act(x, args["pre_activation"])
    bias = None if apart else p.get("bias")
    y = F.conv2d(x, p["weight"], bias, args["stride"], args["padding"], args["dilation"],
                 args["groups"])  # fmt: skip
    if apart and p.get("bias") is not None:
        y = y + _per_channel(p["bias"], y)
    if args["residual"]:
        y = y + xs[parts]
    return _act(y, args["activation"])


def unfused_conv3d_parts(args: dict[str, Any], xs: list[Tensor], p: dict[str, Tensor],
                         apart: bool = False) -> Tensor:  # fmt: skip
    return F.conv3d(torch.cat(xs, 1), p["weight"], p.get("bias"), args["stride"], args["padding"],
                    args["dilation"], args["groups"])  # fmt: skip


def unfused_linear(args: dict[str, Any], xs: list[Tensor], p: dict[str, Tensor],
                   apart: bool = False) -> Tensor:  # fmt: skip
    y = F.linear(xs[0], p["weight"], None if apart else p.get("bias"))
    if apart and p.get("bias") is not None:
        y = y + p["bias"]
    if args["residual"]:
        y = y + xs[1]
    return _act(y, args["activation"])


UNFUSED: dict[str, Callable[..., Tensor]] = {
    "fused_pointwise": unfused_pointwise,
    "conv2d_fused": unfused_conv,
    "conv3d_parts": unfused_conv3d_parts,
    "linear_fused": unfused_linear,
}


# ---- groups ------------------------------------------------------------------------------------


def make_group(op: str, args: dict[str, Any], ins: list[TensorType], dtype: torch.dtype,
               seed: int) -> tuple[nn.Module, dict[str, Tensor]]:  # fmt: skip
    """The fused op's module with random state (scales positive, like a batchnorm's)."""
    opdef = get_op(op)
    make_module = runtime_of(op).module
    assert make_module is not None
    module = make_module(args, ins)
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, spec in opdef.params(args, ins).items():
        t = torch.randn(spec.shape, generator=gen, dtype=dtype)
        state[name] = t.abs() + 0.5 if "scale" in name else t
    module.load_state_dict(state, strict=True, assign=True)
    for name, t in module.named_parameters():
        assert t.requires_grad, name
    return module.eval(), state


def inputs_for(ins: list[TensorType], dtype: torch.dtype, seed: int) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed + 1)
    return [torch.randn(t.shape, generator=gen, dtype=dtype) for t in ins]


def _distinct_groups(zoo_o2: dict) -> list[tuple[str, str, dict[str, Any], list[TensorType]]]:
    seen: dict[Any, tuple[str, str, dict[str, Any], list[TensorType]]] = {}
    for spec, graph in zoo_o2.items():
        for node in graph.nodes():
            if node.op in GROUP_OPS:
                ins = [graph[i].type for i in node.inputs]
                key = (node.op, repr(sorted(node.args.items())), tuple(ins))
                seen.setdefault(key, (f"{spec}:{node.id}", node.op, dict(node.args), ins))
    return list(seen.values())


@pytest.fixture(scope="module")
def zoo_groups(zoo_o2):  # noqa: ANN001, ANN201
    groups = _distinct_groups(zoo_o2)
    ops = {g[1] for g in groups}
    assert ops == set(GROUP_OPS), f"the zoo at -O2 has no {set(GROUP_OPS) - ops}"
    return groups


def _close(got: Tensor, want: Tensor, what: str, rtol: float = 1e-4) -> None:
    """|got - want| <= rtol * |want| + rtol * max|want| everywhere (a fast check first;
    torch.testing's message on failure)."""
    scale = want.abs().max().item() if want.numel() else 1.0
    atol = rtol * max(scale, 1e-3)
    assert got.shape == want.shape, what
    if bool(((got - want).abs_() <= want.abs().mul_(rtol).add_(atol)).all()):
        return
    torch.testing.assert_close(got, want, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def check_group(label: str, op: str, args: dict[str, Any], ins: list[TensorType],
                backward: bool = True, device: str = "cpu") -> None:  # fmt: skip
    """The group's module equals the unfused ops, in inference and (with `backward`) with
    gradients of every input and parameter. On the CPU through both paths (the CPU path, and
    the kernels run on the host); on a GPU through the CUDA path."""
    if op.startswith("buffer_"):
        return check_buffer(label, op, args, ins, device)
    module, state = make_group(op, args, ins, torch.float32, seed=zlib.crc32(label.encode()) % 1000)
    module.to(device)
    state = {k: v.to(device) for k, v in state.items()}
    xs = [x.to(device) for x in inputs_for(ins, torch.float32, seed=7)]
    # (path, run under simulate(), reference adds the bias apart as the kernels do: a ReLU's
    # gradient flips where its input rounds across 0, so the reference rounds as the path does)
    paths = [("CPU path", False, False), ("kernel path", True, True)]
    if device != "cpu":
        paths = [("CUDA path", False, True)]
    for path, simulate, apart in paths:
        with torch.no_grad(), dispatch.simulate() if simulate else contextlib.nullcontext():
            want = UNFUSED[op](args, xs, state)
            # clones: a conv with residual_inplace may write its result into the residual
            _close(module(*(x.clone() for x in xs)), want, f"{label} {path} (inference)")
        if not backward:
            continue
        g = torch.randn(want.shape, generator=torch.Generator().manual_seed(9)).to(device)
        ref_leaves = [x.clone().requires_grad_() for x in xs]
        ref_params = {k: v.clone().requires_grad_() for k, v in state.items()}
        UNFUSED[op](args, ref_leaves, ref_params, apart).backward(g)
        leaves = [x.clone().requires_grad_() for x in xs]
        module.zero_grad(set_to_none=True)
        with dispatch.simulate() if simulate else contextlib.nullcontext():
            out = module(*leaves)
        _close(out, want, f"{label} {path} forward")
        out.backward(g)
        for k, (leaf, ref) in enumerate(zip(leaves, ref_leaves, strict=True)):
            _close(leaf.grad, ref.grad, f"{label} {path} gradient of input {k}")
        for name, param in module.named_parameters():
            _close(param.grad, ref_params[name].grad, f"{label} {path} gradient of {name}")


def check_buffer(label: str, op: str, args: dict[str, Any], ins: list[TensorType],
                 device: str = "cpu") -> None:  # fmt: skip
    """The buffer holds torch.cat of what was written, in its slice, and nothing else moves."""
    for layout in (torch.contiguous_format, torch.channels_last):
        for simulate in (False, True):
            xs = [x.to(device).contiguous(memory_format=layout) if x.dim() == 4 else x.to(device)
                  for x in inputs_for(ins, torch.float32, seed=3)]  # fmt: skip
            ctx = dispatch.simulate() if simulate else torch.no_grad()
            with ctx, torch.no_grad():
                if op == "buffer_init":
                    buf = dispatch.buffer_init(xs[0], args["channels"])
                    c = xs[0].shape[1]
                    assert torch.equal(buf[:, :c], xs[0]), label
                    assert buf.shape[1] == args["channels"]
                else:
                    buf, y = xs
                    before = buf.clone()
                    off, c = args["offset"], y.shape[1]
                    out = dispatch.buffer_write(buf, y, off)
                    assert out is buf
                    want = torch.cat([before[:, :off], y, before[:, off + c :]], dim=1)
                    assert torch.equal(buf, want), label


def test_every_zoo_group_equals_the_unfused_ops(zoo_groups) -> None:  # noqa: ANN001
    """Every distinct group in inference; forward and backward for the first group of each
    distinct configuration (op and args: its gradients do not depend on the sizes otherwise)."""
    configurations = set()
    for label, op, args, ins in zoo_groups:
        key = (op, repr(sorted(args.items())))
        check_group(label, op, args, ins, backward=key not in configurations)
        configurations.add(key)
    assert len(zoo_groups) > 200 and len(configurations) > 100


# ---- float64 gradcheck of every configuration, at small sizes ----------------------------------

ACTS = (
    "none",
    "relu",
    "relu6",
    "sigmoid",
    "silu",
    "hardswish",
    "hardsigmoid",
    "gelu",
    "gelu_tanh",
    "tanh",
)
CONV_CASES = [  # every prologue, epilogue, bias and grouping at least once
    dict(activation="relu", residual=True, pre_affine=False, pre_activation="none", bias=True, groups=1),
    dict(activation="none", residual=True, pre_affine=False, pre_activation="none", bias=False, groups=1),
    dict(activation="silu", residual=False, pre_affine=False, pre_activation="none", bias=True, groups=2),
    dict(activation="none", residual=False, pre_affine=True, pre_activation="relu", bias=False, groups=1),
    dict(activation="gelu", residual=False, pre_affine=True, pre_activation="none", bias=True, groups=1),
    dict(activation="hardswish", residual=True, pre_affine=True, pre_activation="relu", bias=True, groups=1),
]  # fmt: skip


def _gradcheck_module(module: nn.Module, xs: list[Tensor]) -> None:
    params = [p for _, p in module.named_parameters()]
    names = [n for n, _ in module.named_parameters()]

    def fn(*tensors: Tensor) -> Tensor:
        inputs, values = tensors[: len(xs)], tensors[len(xs) :]
        return torch.func.functional_call(module, dict(zip(names, values, strict=True)), inputs)

    leaves = [x.clone().requires_grad_() for x in xs] + [
        p.detach().clone().requires_grad_() for p in params
    ]
    # fast mode: the Jacobian checked along random directions (one pass per input, not per entry)
    assert torch.autograd.gradcheck(fn, tuple(leaves), fast_mode=True)
    with dispatch.simulate():
        assert torch.autograd.gradcheck(fn, tuple(leaves), fast_mode=True)


def _away_from_kinks(t: Tensor) -> Tensor:
    from tests.cuda.test_kernels_host import _away_from_kinks as away

    return away(t)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "-".join(f"{v}" for v in c.values()))
def test_conv_group_gradcheck(case: dict[str, Any]) -> None:
    args = get_op("conv2d_fused").normalize_args(
        {"out_channels": 4, "kernel_size": 3, "padding": 1, **case}
    )
    ins = [TensorType((2, 4, 5, 5), "float64")]
    if case["residual"]:
        ins.append(TensorType((2, 4, 5, 5), "float64"))
    module, _ = make_group("conv2d_fused", args, ins, torch.float64, seed=11)
    xs = [_away_from_kinks(x) for x in inputs_for(ins, torch.float64, seed=5)]
    _gradcheck_module(module, xs)


@pytest.mark.parametrize("act", ACTS)
def test_linear_group_gradcheck(act: str) -> None:
    args = get_op("linear_fused").normalize_args(
        {"out_features": 5, "activation": act, "residual": True}
    )
    ins = [TensorType((2, 3, 4), "float64"), TensorType((2, 3, 5), "float64")]
    module, _ = make_group("linear_fused", args, ins, torch.float64, seed=12)
    _gradcheck_module(module, inputs_for(ins, torch.float64, seed=6))


@pytest.mark.parametrize("steps", [
    [["affine"], ["relu"]],
    [["affine"], ["add", 1], ["hardswish"]],
    [["sigmoid"], ["mul", 0], ["scale", 2.0]],
    [["mul", 1], ["affine"], ["gelu_tanh"], ["add", 2]],
], ids=str)  # fmt: skip
def test_pointwise_group_gradcheck(steps: list[list[Any]]) -> None:
    args = get_op("fused_pointwise").normalize_args({"steps": steps})
    used = 1 + max([s[1] for s in steps if s[0] in ("add", "mul")], default=0)
    shapes = [(2, 3, 2, 2), (1, 3, 1, 1), (2, 3, 2, 2)][:used]
    ins = [TensorType(s, "float64") for s in shapes]
    module, _ = make_group("fused_pointwise", args, ins, torch.float64, seed=13)
    xs = [_away_from_kinks(x) for x in inputs_for(ins, torch.float64, seed=8)]
    _gradcheck_module(module, xs)
