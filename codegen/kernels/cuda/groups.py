"""From fused groups to kernels: the chains each fused op computes, and every kernel the
renderer emits for a graph (the `--emit-kernels` files, and what the NVRTC tests compile).

The chain builders are shared by the runtime (dispatch.py, from a module's tensors) and by the
emission below (from the IR's types), so both render the same kernels for the same group.
Which kernels an op's node gets is looked up in `KERNELS_OF` by op name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from archgraph.codegen.kernels.cuda.index import Layout, memory_order, strides_in_order
from archgraph.codegen.kernels.cuda.pointwise import (
    Chain,
    PointwiseKernel,
    Step,
    backward_program,
    forward_program,
    make_kernel,
)
from archgraph.codegen.kernels.cuda.preamble import PREAMBLE
from archgraph.codegen.kernels.cuda.rowwise import RowKernel

from archgraph.ops.registry import get_step

Kernel = PointwiseKernel | RowKernel


# ---- chains of the fused ops -------------------------------------------------------------------


def steps_chain(steps: Sequence[tuple[Any, ...]], n_inputs: int) -> Chain:
    """A fused_pointwise group: operands are its inputs, then (scale, shift) of each affine
    step in order (per-channel vectors along dim 1)."""
    names = [f"in{k}" for k in range(n_inputs)]
    out = []
    for i, step in enumerate(steps):
        kind = get_step(step[0]).operand
        if kind == "":
            out.append(Step(step[0]))
        elif kind == "float":
            out.append(Step(step[0], factor=float(step[1])))
        elif kind == "input":
            out.append(Step(step[0], (("y", step[1]),)))
        else:
            k = len(names)
            names += [f"step{i}.scale", f"step{i}.shift"]
            out.append(Step(step[0], (("scale", k), ("shift", k + 1))))
    return Chain(tuple(names), tuple(out))


def epilogue_chain(bias: bool, residual: bool, act: str) -> Chain:
    """What follows a conv or linear: + bias (per channel), + residual, activation."""
    names, steps = ["acc"], []
    if bias:
        names.append("bias")
        steps.append(Step("add", (("y", len(names) - 1),)))
    if residual:
        names.append("residual")
        steps.append(Step("add", (("y", len(names) - 1),)))
    if act != "none":
        steps.append(Step(act))
    return Chain(tuple(names), tuple(steps))


def prologue_chain(affine: bool, act: str) -> Chain:
    """What precedes a conv: x * pre_scale + pre_shift per channel, activation (BN-ReLU)."""
    names, steps = ["x"], []
    if affine:
        names += ["pre_scale", "pre_shift"]
        steps.append(Step("affine", (("scale", 1), ("shift", 2))))
    if act != "none":
        steps.append(Step(act))
    return Chain(tuple(names), tuple(steps))


COPY = Chain(("value",), ())


def grad_layout(out: Layout) -> Layout:
    """Where a backward kernel writes gradients: dense, in the output's memory order."""
    return Layout(out.shape, strides_in_order(out.shape, memory_order(out)), out.dtype)


def chain_kernels(title: str, chain: Chain, inputs: Sequence[Layout], out: Layout,
                  grads: Sequence[int] = ()) -> list[PointwiseKernel]:  # fmt: skip
    """Forward (and, for `grads`, backward) kernels of a chain, each with its scalar
    fallback when vectorized."""
    fwd = make_kernel(f"{title} forward", forward_program(chain), inputs, [out])
    kernels = [fwd]
    if grads:
        g = grad_layout(out)
        bwd = make_kernel(f"{title} backward", backward_program(chain, grads), [*inputs, out],
                          [g] * len(grads), order=memory_order(out))  # fmt: skip
        kernels.append(bwd)
    return [v for k in kernels for v in ([k, k.scalar()] if k.vec > 1 else [k])]


def channel_view(channels: int, rank: int, axis: int, dtype: str) -> Layout:
    """A per-channel vector [C] seen as a tensor broadcasting along `axis` of a rank-r tensor."""
    shape = [1] * rank
    shape[axis] = channels
    return Layout.dense(shape, dtype)


# ---- kernels of a graph ------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupKernels:
    """The kernels one node of the graph runs on the GPU, in one dtype."""

    node: str
    op: str
    dtype: str
    kernels: tuple[Kernel, ...]

    @property
    def module_source(self) -> str:
        return module_source(self.kernels, f"{self.op} {self.node} ({self.dtype})")


def module_source(kernels: Sequence[Kernel], title: str = "") -> str:
    """One translation unit: a header naming each kernel's role, the preamble, then each
    distinct kernel once. Kernel bodies name no node, so equal groups share kernels."""
    seen: dict[str, str] = {}
    head = [f"// archgraph kernels: {title}"] if title else []
    for k in kernels:
        if k.name not in seen:
            head.append(f"//   {k.name}: {k.title or k.kind}")
            seen[k.name] = k.source
    return "\n".join(head) + "\n" + PREAMBLE + "\n" + "\n".join(seen.values())


@dataclass(frozen=True)
class NodeView:
    """What a kernel rule reads of a node: id, args, input and output types as layouts."""

    id: str
    args: dict[str, Any]
    ins: tuple[Layout, ...]
    out: Layout
    dtype: str
    channels_last: bool

    def dense(self, shape: Sequence[int]) -> Layout:
        return Layout.dense(shape, self.dtype, self.channels_last and len(shape) == 4)


def _pointwise(v: NodeView) -> list[Kernel]:
    steps = v.args["steps"]
    chain = steps_chain(steps, len(v.ins))
    channel = channel_view(v.out.shape[1], len(v.out.shape), 1, v.dtype)
    layouts = [*v.ins] + [channel] * (len(chain.names) - len(v.ins))
    return chain_kernels("pointwise chain", chain, layouts, v.out, grads=range(len(v.ins)))


def _epilogue(v: NodeView, axis: int) -> list[Kernel]:
    act, residual = v.args["activation"], v.args["residual"]
    if act == "none" and not residual:
        return []  # the library call adds the bias itself
    chain = epilogue_chain(v.args["bias"], residual, act)
    layouts = [v.out]
    if v.args["bias"]:
        layouts.append(channel_view(v.out.shape[axis], len(v.out.shape), axis, v.dtype))
    if residual:  # after the data inputs (a conv over parts has several)
        layouts.append(v.ins[v.args.get("parts", 1)])
    return chain_kernels("epilogue", chain, layouts, v.out, grads=range(len(layouts)))


def _conv(v: NodeView) -> list[Kernel]:
    kernels = _epilogue(v, 1)
    if v.args["pre_affine"] or v.args["pre_activation"] != "none":
        x = v.ins[0]
        chain = prologue_chain(v.args["pre_affine"], v.args["pre_activation"])
        layouts = [x] + [channel_view(x.shape[1], len(x.shape), 1, v.dtype)] * (
            len(chain.names) - 1
        )
        kernels += chain_kernels("prologue", chain, layouts, v.dense(x.shape), grads=[0])
    return kernels


def _linear(v: NodeView) -> list[Kernel]:
    return _epilogue(v, len(v.out.shape) - 1)  # bias + GELU when activation is gelu


def _slice_write(v: NodeView, value: Layout, buf_shape: Sequence[int], offset: int) -> list[Kernel]:
    buf = v.dense(buf_shape)
    out = Layout(value.shape, buf.strides, v.dtype)
    title = f"write into channels [{offset}, {offset + value.shape[1]}) of {list(buf_shape)}"
    return chain_kernels(title, COPY, [value], out)


def _buffer_init(v: NodeView) -> list[Kernel]:
    return _slice_write(v, v.ins[0], v.out.shape, 0)


def _buffer_write(v: NodeView) -> list[Kernel]:
    return _slice_write(v, v.ins[1], v.out.shape, v.args["offset"])


def _layernorm(v: NodeView) -> list[Kernel]:
    length = v.out.shape[-1]
    rows = math.prod(v.out.shape) // length
    affine = v.args["elementwise_affine"]
    common = dict(rows=rows, length=length, dtype=v.dtype, param_dtype=v.dtype,
                  eps=v.args["eps"], weight=affine, bias=affine and v.args["bias"])  # fmt: skip
    return [RowKernel("layernorm_fwd", **common), RowKernel("layernorm_bwd", **common)]


def _softmax_of_scores(heads: int, length: int, batch: int, v: NodeView) -> list[Kernel]:
    rows = batch * heads * length
    title = f"attention softmax over [{batch}, {heads}, {length}, {length}]"
    return [RowKernel(kind, rows, length, v.dtype, v.dtype, title=title)
            for kind in ("softmax_fwd", "softmax_bwd")]  # fmt: skip


def _mhsa(v: NodeView) -> list[Kernel]:
    n, length, _ = v.ins[0].shape
    return _softmax_of_scores(v.args["num_heads"], length, n, v)


def _interacting(v: NodeView) -> list[Kernel]:
    n, fields, _ = v.ins[0].shape
    return _softmax_of_scores(v.args["num_heads"], fields, n, v)


KERNELS_OF: dict[str, Callable[[NodeView], list[Kernel]]] = {
    "fused_pointwise": _pointwise,
    "conv2d_fused": _conv,
    "linear_fused": _linear,
    "buffer_init": _buffer_init,
    "buffer_write": _buffer_write,
    "layernorm": _layernorm,
    "mhsa": _mhsa,
    "interacting": _interacting,
}
DTYPES = ("float32", "float16", "bfloat16")


def graph_kernels(graph: Any, dtype: str = "float32") -> list[GroupKernels]:
    """Every kernel the renderer emits for a graph (typically after -O2), per node, with all
    activations in `dtype`; rank-4 activations channels_last when the graph converts to it."""
    channels_last = any(
        n.op == "memory_format" and n.args.get("format") == "channels_last" for n in graph.nodes()
    )

    def layout(t: Any) -> Layout:
        return Layout.dense(t.shape, dtype, channels_last and len(t.shape) == 4)

    groups = []
    for node in graph.nodes():
        rule = KERNELS_OF.get(node.op)
        if rule is None:
            continue
        ins = tuple(layout(graph[i].type) for i in node.inputs)
        view = NodeView(node.id, dict(node.args), ins, layout(node.type), dtype, channels_last)
        kernels = rule(view)
        if kernels:
            groups.append(GroupKernels(node.id, node.op, dtype, tuple(kernels)))
    return groups
