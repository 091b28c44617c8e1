"""The CPU path of the fused ops, in torch.

- `pointwise_chain`: a fused pointwise group (archgraph.ops.fused) as one call, each step by the
  torch functions its op declares (archgraph.ops.registry.PointwiseStep). The first step
  makes a fresh tensor; the following steps update it in place, so a chain of k steps allocates
  one output instead of k intermediates. With gradients it is an autograd Function
  (`PointwiseChainFunction`) that computes the same way, keeps only the group's inputs and
  recomputes the chain out of place in backward: one saved tensor per input instead of one
  per step.
- `conv2d_fused` / `linear_fused` (archgraph.ops.fused_conv): convolution or linear with bias,
  an optional input prologue (per-channel affine, then an activation: a batchnorm-ReLU feeding
  the conv), an optional residual input added before the activation, and the activation.
  With `prepack`, in inference on float32 CPU tensors, they call oneDNN's fused primitives
  (`torch.ops.mkldnn._convolution_pointwise` / `_linear_pointwise`) with the weight reordered
  once into oneDNN's blocked layout and cached (`PackedWeight`); the activation and the residual
  add run as post-ops inside the conv. Otherwise: F.conv2d / F.linear, then the epilogue.
  A large prologue input runs in input-channel chunks accumulated in place into the output
  (`PROLOGUE_CHUNK_BYTES`), so a dense block's normalized concatenation is never whole.
- Dense-block buffers (archgraph.ops.fused_buffer): allocate once, write each layer's output
  into its channel slice. With gradients they are autograd Functions: a write passes the
  buffer's gradient through untouched (no copy) and hands its slice to the value written; a
  prefix is an alias of the buffer's storage with its own version counter, so what a layer
  saves of its input stays valid while later layers write channels no prefix covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from archgraph.codegen.kernels.recompute import recomputed_input

from archgraph.ops.registry import PointwiseStep, get_step

Tensor = torch.Tensor

# oneDNN post-op for each activation a fused conv/linear takes: (attr, scalars, algorithm).
_ONEDNN_UNARY: dict[str, tuple[str, list[float], str | None]] = {
    "none": ("none", [], ""),
    "relu": ("relu", [], ""),
    "relu6": ("hardtanh", [0.0, 6.0], ""),
    "sigmoid": ("sigmoid", [], ""),
    "tanh": ("tanh", [], ""),
    "silu": ("swish", [], ""),
    "hardswish": ("hardswish", [], ""),
    "hardsigmoid": ("hardsigmoid", [], ""),
    "gelu": ("gelu", [], "none"),
    "gelu_tanh": ("gelu", [], "tanh"),
}


def _needs_grad(*tensors: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _channel_view(t: Tensor, rank: int) -> Tensor:
    """A per-channel vector [C] shaped to broadcast along dim 1 of a rank-`rank` tensor."""
    return t.reshape((1, -1) + (1,) * (rank - 2))


def activation(x: Tensor, name: str, inplace: bool) -> Tensor:
    """The unary step `name` ("none": x itself), in place when allowed and declared."""
    if name == "none":
        return x
    step = get_step(name)
    return step.cpu_inplace(x) if inplace and step.cpu_inplace else step.cpu(x)


def pointwise_chain(
    steps: Sequence[tuple[Any, ...]],
    inputs: Sequence[Tensor],
    affines: dict[int, tuple[Tensor, Tensor]],
) -> Tensor:
    """Run a fused pointwise group: `acc = inputs[0]`, then each step updates acc.

    Steps: (unary name,), (name, factor) of a "float" step, (name, k) of an "input" step with
    inputs[k] (broadcast), ("affine",) of a "params" step with affines[i] = (scale, shift) per
    channel (dim 1).
    """
    if _needs_grad(*inputs, *(t for pair in affines.values() for t in pair)):
        last = _sum_then(steps, inputs)
        if last is not None:
            return SumActivationFunction.apply(last, *inputs)
        keys = tuple(sorted(affines))
        flat = [t for i in keys for t in affines[i]]
        return PointwiseChainFunction.apply(tuple(steps), keys, len(inputs), *inputs, *flat)
    return _chain(steps, inputs, affines, inplace_ok=True)


def _chain(
    steps: Sequence[tuple[Any, ...]],
    inputs: Sequence[Tensor],
    affines: dict[int, tuple[Tensor, Tensor]],
    *,
    inplace_ok: bool,
) -> Tensor:
    acc = inputs[0]
    fresh = False  # acc is our own tensor (never an input): safe to update in place
    for i, step in enumerate(steps):
        d = get_step(step[0])
        inplace = inplace_ok and fresh and d.cpu_inplace is not None
        operands: tuple[Any, ...] = ()
        if d.operand == "float":
            operands = (step[1],)
        elif d.operand == "input":
            other = inputs[step[1]]
            inplace = inplace and torch.broadcast_shapes(acc.shape, other.shape) == acc.shape
            operands = (other,)
        elif d.operand == "params":
            scale, shift = affines[i]
            operands = (_channel_view(scale, acc.dim()), _channel_view(shift, acc.dim()))
        acc = d.cpu_inplace(acc, *operands) if inplace else d.cpu(acc, *operands)
        fresh = True
    return acc


class PointwiseChainFunction(torch.autograd.Function):
    """A pointwise group with a backward: forward as in inference (one allocation), saving
    only the inputs; backward recomputes the chain out of place and differentiates it."""

    @staticmethod
    def forward(ctx: Any, steps: tuple, keys: tuple[int, ...], n: int, *tensors: Tensor) -> Tensor:
        ctx.steps, ctx.keys, ctx.n = steps, keys, n
        ctx.save_for_backward(*tensors)
        inputs, affines = _split(keys, n, tensors)
        return _chain(steps, inputs, affines, inplace_ok=True)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        wanted = ctx.needs_input_grad[3:]
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(w) for t, w in zip(saved, wanted, strict=True)]
            inputs, affines = _split(ctx.keys, ctx.n, leaves)
            out = _chain(ctx.steps, inputs, affines, inplace_ok=False)
            targets = [t for t, w in zip(leaves, wanted, strict=True) if w]
            grads = iter(torch.autograd.grad(out, targets, grad, allow_unused=True))
        return (None, None, None, *(next(grads) if w else None for w in wanted))


def _sum_then(steps: Sequence[tuple[Any, ...]], inputs: Sequence[Tensor]) -> PointwiseStep | None:
    """The last step of act(inputs[0] + inputs[1] + ...), each input once and none broadcast (a
    residual add), when act's gradient comes from its output (PointwiseStep.grad_from_output);
    else None."""
    adds, last = steps[:-1], steps[-1]
    if not adds or len(last) != 1 or any(s[0] != "add" for s in adds):
        return None
    if sorted(s[1] for s in adds) != list(range(1, len(inputs))):
        return None
    if any(t.shape != inputs[0].shape for t in inputs):
        return None
    step = get_step(last[0])
    return step if step.grad_from_output is not None and step.cpu_inplace else None


class SumActivationFunction(torch.autograd.Function):
    """act(a + b + ...) keeping its output, not its inputs, for backward: every input's
    gradient is act's gradient from its output (ReLU: the output gradient where the output is
    positive), with no recomputation of the sum as PointwiseChainFunction would do."""

    @staticmethod
    def forward(ctx: Any, act: PointwiseStep, *inputs: Tensor) -> Tensor:
        out = inputs[0] + inputs[1]
        for t in inputs[2:]:
            out.add_(t)
        assert act.cpu_inplace is not None and act.grad_from_output is not None
        out = act.cpu_inplace(out)
        ctx.save_for_backward(out)
        ctx.grad_from_output = act.grad_from_output
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        (out,) = ctx.saved_tensors
        g = ctx.grad_from_output(grad, out)
        return (None, *(g if need else None for need in ctx.needs_input_grad[1:]))


def _split(
    keys: tuple[int, ...], n: int, tensors: Sequence[Tensor]
) -> tuple[list[Tensor], dict[int, tuple[Tensor, Tensor]]]:
    flat = tensors[n:]
    return list(tensors[:n]), {i: (flat[2 * j], flat[2 * j + 1]) for j, i in enumerate(keys)}


class PackedWeight:
    """Weights reordered once into oneDNN's blocked layout, per use (input shape, channel
    range), dropped when the weight changes (another tensor, or the same one written in place).
    Not state: copies of a module start empty."""

    LIMIT = 16  # distinct uses kept (input shapes x prologue chunks)

    def __init__(self) -> None:
        self._weight_key: tuple[int, int] | None = None
        self._packed: dict[tuple[Any, ...], Tensor] = {}

    def get(self, weight: Tensor, key: tuple[Any, ...], pack: Callable[[], Tensor]) -> Tensor:
        # inference tensors have no version counter (and cannot be written outside inference)
        version = -1 if weight.is_inference() else weight._version
        weight_key = (weight.data_ptr(), version)
        if weight_key != self._weight_key or len(self._packed) >= self.LIMIT:
            self._packed, self._weight_key = {}, weight_key
        packed = self._packed.get(key)
        if packed is None:
            packed = self._packed[key] = pack()
        return packed

    def __deepcopy__(self, memo: dict[int, Any]) -> PackedWeight:
        return PackedWeight()

    def __getstate__(self) -> dict[str, Any]:
        return {"_weight_key": None, "_packed": {}}


def onednn_ok(x: Tensor, *tensors: Tensor | None) -> bool:
    """oneDNN's fused CPU primitives apply: float32 CPU inference, outside tracing/export."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and not _needs_grad(x, *tensors)
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and not torch.onnx.is_in_onnx_export()
    )


def conv_prologue(
    x: Tensor, scale: Tensor | None, shift: Tensor | None, act: str, inplace_ok: bool
) -> Tensor:
    """The conv's input prologue: x * scale + shift per channel, then `act` (a BN-ReLU)."""
    if scale is not None and shift is not None:
        x = torch.addcmul(_channel_view(shift, x.dim()), x, _channel_view(scale, x.dim()))
        return activation(x, act, inplace_ok)
    return activation(x, act, False)


PROLOGUE_CHUNK_BYTES = 8 << 20
"""A conv prologue (BN-ReLU of the input) larger than this runs over input-channel chunks: each
chunk's normalized copy feeds a partial convolution accumulated in place into the output, so
the full normalized copy of a wide input (a dense block's concatenation) never exists at once."""


def prologue_chunks(x: Tensor, groups: int) -> list[tuple[int, int]]:
    """Input-channel ranges for the prologue: one unless the input is large (and groups 1)."""
    channels = x.shape[1]
    count = min(channels, -(-x.numel() * x.element_size() // PROLOGUE_CHUNK_BYTES))
    if groups != 1 or count <= 1:
        return [(0, channels)]
    bounds = [round(i * channels / count) for i in range(count + 1)]
    return list(zip(bounds, bounds[1:], strict=False))


def conv_over_parts(
    parts: Sequence[Tensor],
    weight: Tensor,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    inplace_ok: bool,
) -> Tensor:
    """conv(concat(parts, dim=1), weight) without the concatenation (2-D or 3-D, by the
    weight's rank): the sum over the parts of each one's conv with its slice of the weight's
    input channels."""
    conv = F.conv3d if weight.dim() == 5 else F.conv2d
    y: Tensor | None = None
    lo = 0
    for part in parts:
        hi = lo + part.shape[1]
        with recomputed_input(part):
            z = conv(part, weight[:, lo:hi], None, stride, padding, dilation, groups)
        y = z if y is None else (y.add_(z) if inplace_ok else y + z)
        lo = hi
    assert y is not None
    return y


def channel_ranges(parts: Sequence[Tensor]) -> Iterator[tuple[Tensor, int, int]]:
    """(part, lo, hi): each part with the input channels [lo, hi) of the weight it meets."""
    lo = 0
    for part in parts:
        yield part, lo, lo + part.shape[1]
        lo += part.shape[1]


def onednn_parts(
    parts: Iterable[tuple[Tensor, int, int]],
    residual: Tensor | None,
    weight: Tensor,
    bias: Tensor | None,
    args: tuple[Any, ...],
    act: str,
    cache: PackedWeight,
) -> Tensor:
    """conv (2-D or 3-D) over the concatenation of `parts` ((tensor, lo, hi): its input
    channels [lo, hi) of the weight): the first part's conv with the bias and the residual,
    then each further part's conv added in place by oneDNN's sum post-op, the ReLU fused into
    the last. Each part is dropped before the next is made (a lazily made prologue chunk). For
    float32 CPU inference (`onednn_ok`)."""
    y: Tensor | None = None
    for part, lo, hi in parts:
        packed = _packed_conv_weight(cache, weight, part, args, lo, hi)
        if y is None:
            y = (
                torch.ops.mkldnn._convolution_pointwise(part, packed, bias, *args, "none", [], "")
                if residual is None
                else torch.ops.mkldnn._convolution_pointwise.binary(
                    part, residual, packed, bias, *args, "add", 1.0, None, [], None
                )
            )
        else:
            fuse_relu = act == "relu" and hi == weight.shape[1]
            torch.ops.mkldnn._convolution_pointwise_.binary(
                y, part, packed, None, *args, "add", 1.0,
                "relu" if fuse_relu else None, [], "" if fuse_relu else None,
            )  # fmt: skip
        del part
    assert y is not None
    return y if act == "relu" else activation(y, act, True)


def conv2d_fused(
    x: Tensor | list[Tensor],
    residual: Tensor | None,
    weight: Tensor,
    bias: Tensor | None,
    *,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
    act: str,
    pre_scale: Tensor | None,
    pre_shift: Tensor | None,
    pre_act: str,
    prepack: bool,
    cache: PackedWeight,
    residual_inplace: bool = False,
) -> Tensor:
    """act(conv2d(prologue(x), weight, bias) + residual). A list x holds the parts of the input's
    channels (their concatenation is never made; no prologue then). With `residual_inplace`
    (nothing reads the residual afterwards), oneDNN adds the conv into the residual itself."""
    if isinstance(x, list):
        inplace_ok = not _needs_grad(*x, residual, weight, bias)
        if prepack and onednn_ok(x[0], *x[1:], residual, weight, bias):
            args = (list(padding), list(stride), list(dilation), groups)
            return onednn_parts(channel_ranges(x), residual, weight, bias, args, act, cache)
        y = conv_over_parts(x, weight, stride, padding, dilation, groups, inplace_ok)
        if bias is not None:
            y = (
                y.add_(_channel_view(bias, y.dim()))
                if inplace_ok
                else y + _channel_view(bias, y.dim())
            )
        if residual is not None:
            y = y.add_(residual) if inplace_ok else y + residual
        return activation(y, act, inplace_ok)
    inplace_ok = not _needs_grad(x, residual, weight, bias, pre_scale, pre_shift)
    has_prologue = pre_scale is not None or pre_act != "none"
    if prepack and onednn_ok(x, residual, weight, bias, pre_scale, pre_shift):
        args = (list(padding), list(stride), list(dilation), groups)
        chunks = prologue_chunks(x, groups) if has_prologue else [(0, x.shape[1])]
        if len(chunks) > 1:
            return _onednn_chunked(x, residual, weight, bias, args, act, chunks, pre_scale,
                                   pre_shift, pre_act, cache)  # fmt: skip
        if has_prologue:
            x = conv_prologue(x, pre_scale, pre_shift, pre_act, inplace_ok)
        packed = _packed_conv_weight(cache, weight, x, args, 0, x.shape[1])
        attr, scalars, algorithm = _ONEDNN_UNARY[act]
        if residual is None:
            return torch.ops.mkldnn._convolution_pointwise(
                x, packed, bias, *args, attr, scalars, algorithm
            )
        # the binary form fuses only ReLU after the add; other activations run after it
        post = "relu" if act == "relu" else None
        if residual_inplace and _same_layout(residual, x):
            y = torch.ops.mkldnn._convolution_pointwise_.binary(
                residual, x, packed, bias, *args, "add", 1.0, post, [], "" if post else None
            )
        else:
            y = torch.ops.mkldnn._convolution_pointwise.binary(
                x, residual, packed, bias, *args, "add", 1.0, post, [], "" if post else None
            )
        return y if act in ("none", "relu") else activation(y, act, True)
    if has_prologue:
        x = conv_prologue(x, pre_scale, pre_shift, pre_act, inplace_ok)
    with recomputed_input(x):  # a training BN-ReLU output is saved as its recipe
        y = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if residual is not None:
        y = y.add_(residual) if inplace_ok else y + residual
    return activation(y, act, inplace_ok)


def _same_layout(a: Tensor, b: Tensor) -> bool:
    """a and b are both dense NCHW or both dense channels_last (oneDNN's in-place sum writes
    the output in its input's layout)."""
    return any(
        a.is_contiguous(memory_format=f) and b.is_contiguous(memory_format=f)
        for f in (torch.channels_last, torch.contiguous_format)
    )


def _packed_conv_weight(
    cache: PackedWeight, weight: Tensor, x: Tensor, args: tuple[Any, ...], lo: int, hi: int
) -> Tensor:
    """The packed weight of input channels [lo, hi) for an input shaped like x."""

    def pack() -> Tensor:
        w = weight if (lo, hi) == (0, weight.shape[1]) else weight[:, lo:hi].contiguous()
        return torch.ops.mkldnn._reorder_convolution_weight(w, *args, list(x.shape))

    return cache.get(weight, (tuple(x.shape), lo, hi), pack)


def _onednn_chunked(
    x: Tensor,
    residual: Tensor | None,
    weight: Tensor,
    bias: Tensor | None,
    args: tuple[Any, ...],
    act: str,
    chunks: list[tuple[int, int]],
    pre_scale: Tensor | None,
    pre_shift: Tensor | None,
    pre_act: str,
    cache: PackedWeight,
) -> Tensor:
    """conv(prologue(x)) as a sum over input-channel chunks, accumulated in place; each chunk's
    normalized copy is made only when its turn comes."""
    prologued = (
        (
            conv_prologue(
                x.narrow(1, lo, hi - lo),
                None if pre_scale is None else pre_scale[lo:hi],
                None if pre_shift is None else pre_shift[lo:hi],
                pre_act,
                True,
            ),
            lo,
            hi,
        )
        for lo, hi in chunks
    )
    return onednn_parts(prologued, residual, weight, bias, args, act, cache)


def linear_fused(
    x: Tensor,
    residual: Tensor | None,
    weight: Tensor,
    bias: Tensor | None,
    *,
    act: str,
    prepack: bool,
    cache: PackedWeight,
) -> Tensor:
    """act(linear(x, weight, bias) + residual)."""
    inplace_ok = not _needs_grad(x, residual, weight, bias)
    if prepack and onednn_ok(x, residual, weight, bias):
        rows = x.numel() // x.shape[-1]
        packed = cache.get(
            weight, (rows,), lambda: torch.ops.mkldnn._reorder_linear_weight(weight, rows)
        )
        if residual is None:
            attr, scalars, algorithm = _ONEDNN_UNARY[act]
            return torch.ops.mkldnn._linear_pointwise(x, packed, bias, attr, scalars, algorithm)
        y = torch.ops.mkldnn._linear_pointwise.binary(x, residual, packed, bias, "add")
        return activation(y, act, True)
    y = F.linear(x, weight, bias)
    if residual is not None:
        y = y.add_(residual) if inplace_ok else y + residual
    return activation(y, act, inplace_ok)


def buffer_init(x: Tensor, channels: int) -> Tensor:
    """A [N, channels, ...] buffer in x's memory format with x written into its first channels."""
    if _needs_grad(x):
        buf = _BufferInit.apply(x, channels)
        setattr(buf, _SHARED_GRAD, _SharedGrad())
        return buf
    return _buffer_init(x, channels)


def _buffer_init(x: Tensor, channels: int) -> Tensor:
    shape = (x.shape[0], channels, *x.shape[2:])
    fmt = torch.channels_last if _is_channels_last(x) else torch.contiguous_format
    buf = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)
    buf.narrow(1, 0, x.shape[1]).copy_(x)
    return buf


def buffer_write(buf: Tensor, y: Tensor, offset: int) -> Tensor:
    """Write y into channels [offset, offset + y's channels) of buf; returns buf."""
    if _needs_grad(buf, y):
        return _BufferWrite.apply(buf, y, offset, getattr(buf, _SHARED_GRAD, None))
    buf.narrow(1, offset, y.shape[1]).copy_(y)
    return buf


def buffer_prefix(buf: Tensor, channels: int) -> Tensor:
    """The first `channels` channels of buf, without a copy."""
    if _needs_grad(buf):
        return _BufferPrefix.apply(buf, channels, getattr(buf, _SHARED_GRAD, None))
    return buf.narrow(1, 0, channels)


_SHARED_GRAD = "_archgraph_shared_grad"  # attribute of a buffer made with gradients


class _SharedGrad:
    """A buffer's gradient in backward, one tensor for all its versions.

    Backward meets a block's writes last to first. Each write passes the gradient of the
    buffer after it on as the gradient of the buffer before it (`grad`, of buffer version
    `version`), and the prefixes read from that version add their gradients into its first
    channels in place and give autograd none: they run before the write that consumes it
    (each prefix feeds the layer whose output the next write stores). Without it, every
    prefix would make a zeroed buffer-sized gradient that autograd then adds to the write's:
    three passes over the whole buffer per layer where one pass over the prefix is needed.
    """

    __slots__ = ("grad", "version")

    def __init__(self) -> None:
        self.grad: Tensor | None = None
        self.version = -1

    def take(self, grad: Tensor, version: int) -> Tensor:
        """grad as the gradient of buffer `version`, in a tensor of our own: one handed in from
        outside (a view, an expanded tensor, one autograd may hand elsewhere) is copied once,
        so adding into it in place changes nothing another node reads."""
        own = self.grad
        if not (
            own is not None
            and grad.data_ptr() == own.data_ptr()
            and grad.shape == own.shape
            and grad.stride() == own.stride()
        ):
            grad = grad.clone()
        self.grad, self.version = grad, version
        return grad


class _BufferInit(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, channels: int) -> Tensor:
        ctx.channels = x.shape[1]
        return _buffer_init(x, channels)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad.narrow(1, 0, ctx.channels), None


class _BufferWrite(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, buf: Tensor, y: Tensor, offset: int, shared: _SharedGrad | None
    ) -> Tensor:
        ctx.span, ctx.shared, ctx.version = (offset, y.shape[1]), shared, buf._version
        buf.narrow(1, offset, y.shape[1]).copy_(y)
        ctx.mark_dirty(buf)
        return buf

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor, None, None]:
        if ctx.shared is not None:
            grad = ctx.shared.take(grad, ctx.version)
        # the old buffer's channels at the slice are read by nobody (no earlier prefix covers
        # them), so its gradient there is never used: pass the gradient on without zeroing it
        return grad, grad.narrow(1, *ctx.span), None, None


class _BufferPrefix(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, buf: Tensor, channels: int, shared: _SharedGrad | None) -> Tensor:
        ctx.shape, ctx.channels = buf.shape, channels
        ctx.shared, ctx.version = shared, buf._version
        ctx.channels_last = _is_channels_last(buf)
        view = buf.narrow(1, 0, channels)
        # same storage, its own version counter: later writes into other channels of the
        # buffer do not invalidate what consumers of this prefix saved for backward
        return buf.new_empty(0).set_(
            buf.untyped_storage(), view.storage_offset(), view.shape, view.stride()
        )

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None]:
        shared = ctx.shared
        if (
            shared is not None
            and shared.version == ctx.version
            and shared.grad is not None
            and not torch.is_grad_enabled()  # a double backward must not see grads change
        ):
            shared.grad.narrow(1, 0, ctx.channels).add_(grad)
            return None, None, None
        if ctx.channels == ctx.shape[1]:
            return grad, None, None
        fmt = torch.channels_last if ctx.channels_last else torch.contiguous_format
        full = torch.empty(ctx.shape, dtype=grad.dtype, device=grad.device, memory_format=fmt)
        full.zero_()
        full.narrow(1, 0, ctx.channels).copy_(grad)
        return full, None, None


def _is_channels_last(x: Tensor) -> bool:
    return (
        x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and not x.is_contiguous()
    )
