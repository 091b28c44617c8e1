"""The op registry: one OpDef per op, holding every rule about that op.

An op declares its argument schema, shape rule, parameters (shapes and initializers), cost rule,
torch lowering, channel rule for pruning and what the fusion passes need (its pointwise step,
whether it is a foldable per-channel affine, its fused form) in its own file, and registers
itself here. Everything else in archgraph (front ends, passes, codegen, profiler) dispatches by
looking an op up, never by branching on its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from torch import Tensor, fx, nn

from archgraph.errors import SpecError, did_you_mean
from archgraph.ir.types import TensorType

REQUIRED: Any = object()


class ArgTypeError(Exception):
    """An argument value of the wrong type; carries the expected description."""

    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


@dataclass(frozen=True)
class ArgKind:
    """A named argument type with a normalizing checker (value -> canonical value)."""

    name: str
    check: Callable[[Any], Any]
    json_schema: Mapping[str, Any]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(v: Any) -> int:
    if not _is_int(v):
        raise ArgTypeError("an integer")
    return v


def _float(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ArgTypeError("a number")
    return float(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ArgTypeError("true or false")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise ArgTypeError("a string")
    return v


def _pair(v: Any) -> tuple[int, int]:
    if _is_int(v):
        return (v, v)
    if isinstance(v, list | tuple) and len(v) == 2 and all(_is_int(x) for x in v):
        return (v[0], v[1])
    raise ArgTypeError("an integer or a list of two integers")


def _ints(v: Any) -> tuple[int, ...]:
    if isinstance(v, list | tuple) and all(_is_int(x) for x in v):
        return tuple(v)
    raise ArgTypeError("a list of integers")


INT = ArgKind("int", _int, {"type": "integer"})
FLOAT = ArgKind("float", _float, {"type": "number"})
BOOL = ArgKind("bool", _bool, {"type": "boolean"})
STR = ArgKind("str", _str, {"type": "string"})
PAIR = ArgKind(
    "int or [int, int]",
    _pair,
    {
        "oneOf": [
            {"type": "integer"},
            {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        ]
    },
)
INTS = ArgKind("list of int", _ints, {"type": "array", "items": {"type": "integer"}})


def optional(kind: ArgKind) -> ArgKind:
    """The same kind, also accepting null (None)."""

    def check(v: Any) -> Any:
        if v is None:
            return None
        try:
            return kind.check(v)
        except ArgTypeError as e:
            raise ArgTypeError(f"{e.expected} or null") from None

    return ArgKind(
        f"{kind.name} or null", check, {"anyOf": [dict(kind.json_schema), {"type": "null"}]}
    )


@dataclass(frozen=True)
class Arg:
    kind: ArgKind
    default: Any = REQUIRED
    choices: tuple[Any, ...] | None = None
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class ParamSpec:
    """One tensor of an op's state: shape, initializer name, and whether it is a trainable parameter.

    Initializers (see archgraph.ir.weights): "kaiming_uniform" (PyTorch's conv/linear default),
    "fan_in_uniform" (PyTorch's bias default; needs fan_in), "ones", "zeros", "trunc_normal",
    "constant" (every element `value`, e.g. a layer scale's small start).

    A `lower=` op may own one tensor stored at the node's own id (state_dict key '<node id>'
    rather than '<node id>.<name>', e.g. timm's top-level `pos_embed`): its ParamSpec is named ""
    and the lowering reads it with `emit.own_tensor()`.
    """

    shape: tuple[int, ...]
    init: str
    trainable: bool = True
    dtype: str = "float32"
    fan_in: int | None = None
    value: float = 0.0

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class Cost:
    """Analytic cost of one node. MACs: multiply-accumulates of conv/linear/matmul work.

    FLOPs: every floating-point operation, 2 per MAC plus the pointwise and reduction work
    (normalization, activations, pooling, softmax), so FLOPs >= 2 * MACs.

    inactive_params: of the node's trainable parameters, how many a token does not use (the
    experts a mixture-of-experts layer does not route it to); the profiler's active params are
    the params less these.

    active_macs: of `macs`, the work the tokens' own routes do, when the op does more (a mixture
    of experts runs every expert over its capacity slots, empty ones included: its active MACs
    are the gate plus each token's top-k experts); None: all of `macs`. The profiler's MACs per
    token are built from these.
    """

    macs: int = 0
    flops: int = 0
    inactive_params: int = 0
    active_macs: int | None = None


class ShapeMismatch(Exception):
    """Raised by a shape rule; the builder turns it into a located SpecError."""

    def __init__(self, message: str, *, expected: str, found: str, input_index: int | None = None):
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.found = found
        self.input_index = input_index


class Emitter(Protocol):
    """What an op's lowering may emit into the fx graph (implemented by archgraph.codegen.fx)."""

    def function(
        self, fn: Callable[..., Any], args: tuple, kwargs: dict | None = None
    ) -> fx.Node: ...

    def method(self, name: str, args: tuple, kwargs: dict | None = None) -> fx.Node: ...

    def own_tensor(self) -> fx.Node:
        """The node's own tensor (its ParamSpec named ""), read with get_attr."""
        ...


@dataclass(frozen=True)
class ChannelRule:
    """How an op's output channels relate to its input channels: what structured pruning
    (archgraph.passes.prune) needs to know to remove channels consistently across the DAG.

    kind:
      "produce"  new output channels on `axis` (conv, linear); inputs' channels on `in_axis`
                 are consumed by the parameters in `in_params`
      "pass"     output channel i is input channel i on `axis` (None: any axis; pointwise ops);
                 per-channel parameters in `out_params` (batchnorm, depthwise conv)
      "couple"   inputs and output share channels elementwise (add, mul; broadcast dims of
                 size 1 excepted); concat along another dim than the channels couples too
      "concat"   output channels are the inputs' channels at offsets (along the `dim` arg)
      "move"     the channel dim moves (transpose, permute, flatten, select): `move` maps an
                 input channel dim to the output's, or None where the channels are lost
      "heads"    pass on `axis`, plus whole attention heads that can be removed inside the op
                 (axis None: the op mixes the model channels; only heads can go)
      "reduce"   the op mixes channels on `axis` (layernorm, softmax): they cannot be pruned
    out_params / in_params: parameter name -> the dim that output / input channels index.
    head_params: parameter name -> (dim, parts): the dim holds `parts` blocks of heads*head_dim.
    resize(args, n): the args for n output channels (n heads for "heads").
    """

    kind: str
    axis: int | None = None
    in_axis: int | None = None
    out_params: Mapping[str, int] = field(default_factory=dict)
    in_params: Mapping[str, int] = field(default_factory=dict)
    head_params: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    resize: Callable[[dict[str, Any], int], dict[str, Any]] | None = None
    move: Callable[[dict[str, Any], TensorType, int], int | None] | None = None


ChannelRuleFn = Callable[[dict[str, Any], list[TensorType]], ChannelRule]


def channels_fixed(rule: ChannelRule) -> ChannelRuleFn:
    """A channel rule that does not depend on args or input types."""

    def fn(args: dict[str, Any], ins: list[TensorType]) -> ChannelRule:
        return rule

    return fn


PASS_ANY = channels_fixed(ChannelRule("pass"))
PASS_NCHW = channels_fixed(ChannelRule("pass", axis=1))


Infer = Callable[[dict[str, Any], list[TensorType]], TensorType]
Lower = Callable[[Emitter, dict[str, Any], list[fx.Node]], fx.Node]
MakeModule = Callable[[dict[str, Any], list[TensorType]], nn.Module]


def no_params(args: dict[str, Any], ins: list[TensorType]) -> dict[str, ParamSpec]:
    return {}


def pointwise_cost(per_element: int = 1) -> Callable[..., Cost]:
    """Cost rule of an op doing `per_element` flops for each output element."""

    def cost(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
        return Cost(macs=0, flops=per_element * out.numel)

    return cost


def free(args: dict[str, Any], ins: list[TensorType], out: TensorType) -> Cost:
    """Cost rule of data movement only (views, concatenation): no arithmetic."""
    return Cost()


STEP_OPERANDS = ("", "float", "input", "params")


@dataclass(frozen=True)
class PointwiseStep:
    """One kind of step of a fused pointwise chain (archgraph.ops.fused): what the kernel
    renderer emits and the CPU path runs for an op inside a fused group.

    operand: "" none; "float" a constant (`factor`); "input" another input of the group (`y`,
    broadcast); "params" a per-channel `scale` and `shift` along dim 1.
    expr: the C expression of the step over `x` (the running value) and its operand's names,
    e.g. "fmaxf(x, 0.0f)", "x + y"; codegen parses it (and differentiates it for backward).
    cpu: the same in torch, out of place: cpu(x), cpu(x, factor), cpu(x, y), cpu(x, scale,
    shift) (scale and shift already shaped to broadcast along dim 1).
    cpu_inplace: the same updating x in place (returns x); None: the CPU path uses `cpu`.
    flops: per element.
    grad_from_output: a unary step whose derivative is a function of its output: the input
      gradient from (output gradient, output), so a chain ending in it may keep its output
      for backward instead of its inputs (torch's own rule: ReLU, sigmoid, tanh).
    """

    name: str
    expr: str
    cpu: Callable[..., Tensor]
    cpu_inplace: Callable[..., Tensor] | None = None
    flops: int = 1
    operand: str = ""
    grad_from_output: Callable[[Tensor, Tensor], Tensor] | None = None

    def __post_init__(self) -> None:
        if self.operand not in STEP_OPERANDS:
            raise ValueError(f"step {self.name}: operand must be one of {STEP_OPERANDS}")


@dataclass(frozen=True)
class Overwrite:
    """The op can take its result in the storage of input `index(args)` (None: not with these
    args) when its boolean arg `flag` is set, which the inplace_residual pass does where
    archgraph.ir.aliasing.may_overwrite allows it and graph validation checks."""

    flag: str
    index: Callable[[Mapping[str, Any]], int | None]


@dataclass(frozen=True)
class Affine:
    """The op computes x * scale + shift with per-channel scale and shift on `axis` (None: the
    same for every element, a constant factor). Such an op folds into the weight and bias of a
    conv or linear before it (fold_bn), becomes a conv's input prologue (fuse_conv; per-channel
    on dim 1 only) and an `affine` step of a fused group (fuse_pointwise, when the op has no
    step of its own).

    scale_shift(args, tensor, channels) -> (scale, shift), both float64 of shape [channels];
    tensor(name) reads the node's bound tensor `name` (e.g. "running_mean").
    """

    scale_shift: Callable[[dict[str, Any], Callable[[str], Tensor], int], tuple[Tensor, Tensor]]
    axis: int | None = 1


StepOf = Callable[[dict[str, Any]], tuple[Any, ...]]


@dataclass(frozen=True)
class OpDef:
    """Everything about one op. At most one of `module` (ops with state or training behaviour,
    lowered to a call_module whose state_dict keys are the ParamSpec names) and `lower`
    (ops lowered to torch functions; stateless, or owning one tensor at the node id) is set;
    with neither, the op is data whose runtime the back end registers (the fused ops the
    passes make: archgraph.codegen.runtimes).

    What the fusion passes ask (all optional):
    steps: the pointwise step kinds this op declares (registered with it; see PointwiseStep).
    step: the op's node as a step of a fused chain, from its args: (name,) or (name, constant);
      an "input" step's operand (the other input's index) is added by the pass. Default: the
      op's only step, when it declares exactly one without a constant.
    affine: the op is a per-channel affine (see Affine).
    fused: the op this one becomes when a pass gives it a prologue, epilogue or prepacked
      weights (conv2d -> conv2d_fused); the fused op takes this op's args plus its own.
    fold_axis: a per-channel affine after this op folds into its weight (output channels on
      weight dim 0) and bias; the output dim holding those channels (conv2d 1, linear -1).
    channels_last: the op computes faster on rank-4 inputs stored channels_last (NHWC), so the
      layout pass converts a graph input that feeds it.
    eval_identity: in eval mode the op returns its input (identity, dropout), so the -O1/-O2
      passes, which build inference modules, remove it.
    train_identity: the op returns its input in training too (identity; not dropout), so the
      train-mode pipelines remove it as well.
    stack: (dim, arg): the op's output channels are on `dim`, their number is its arg `arg`,
      and they index dim 0 of its `weight` and `bias`, so layers alike but for their width that
      read one input merge into one by stacking (horizontal fusion).
    sdpa_form: the op computing the same with F.scaled_dot_product_attention (same args and
      weights; the sdpa pass swaps it in).
    fresh_output: the op returns a tensor of its own in inference, never an input, a view of
      one or a parameter, so its last reader may overwrite it (the inplace_residual pass).
    overwrites: the op can write its result into one input's storage (see Overwrite).
    """

    name: str
    doc: str
    infer: Infer
    args: dict[str, Arg] = field(default_factory=dict)
    arity: tuple[int, int | None] = (1, 1)
    params: Callable[[dict[str, Any], list[TensorType]], dict[str, ParamSpec]] = no_params
    cost: Callable[[dict[str, Any], list[TensorType], TensorType], Cost] = pointwise_cost(1)
    module: MakeModule | None = None
    lower: Lower | None = None
    pointwise: bool = False
    channels: ChannelRuleFn | None = None  # None: pruning treats the op as opaque (no channels)
    steps: tuple[PointwiseStep, ...] = ()
    step: StepOf | None = None
    affine: Affine | None = None
    fused: str | None = None
    fold_axis: int | None = None
    channels_last: bool = False
    eval_identity: bool = False
    train_identity: bool = False
    stack: tuple[int, str] | None = None
    sdpa_form: str | None = None
    fresh_output: bool = False
    overwrites: Overwrite | None = None

    def __post_init__(self) -> None:
        if self.module is not None and self.lower is not None:
            raise ValueError(f"op {self.name}: set at most one of module= and lower=")

    def as_step(self, args: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The node as a fused pointwise step ((name,) or (name, constant)), or None."""
        if self.step is not None:
            return self.step(dict(args))
        if len(self.steps) == 1 and self.steps[0].operand in ("", "input"):
            return (self.steps[0].name,)
        return None

    def normalize_args(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Check `given` against the schema; return all args with defaults filled in.

        Raises SpecError (without location; the caller adds it) naming the bad argument.
        """
        unknown = [k for k in given if k not in self.args]
        if unknown:
            k = unknown[0]
            hint = did_you_mean(k, self.args) or (
                f"{self.name} takes: {', '.join(self.args) or 'no arguments'}"
            )
            raise SpecError(f"unknown argument '{k}' for op '{self.name}'", hint=hint, field=k)
        out: dict[str, Any] = {}
        for key, arg in self.args.items():
            if key not in given or (given[key] is None and arg.required):
                if arg.required:
                    raise SpecError(
                        f"op '{self.name}' needs argument '{key}'",
                        expected=f"'{key}': {arg.kind.name}",
                        found="nothing",
                    )
                out[key] = arg.kind.check(arg.default)  # defaults in normal form too
                continue
            value = given[key]
            try:
                value = arg.kind.check(value)
            except ArgTypeError as e:
                raise SpecError(
                    f"argument '{key}' of op '{self.name}' has the wrong type",
                    expected=e.expected,
                    found=f"{value!r} ({type(value).__name__})",
                    field=key,
                ) from None
            if arg.choices is not None and value not in arg.choices:
                raise SpecError(
                    f"argument '{key}' of op '{self.name}' is not one of its choices",
                    expected=" | ".join(repr(c) for c in arg.choices),
                    found=repr(value),
                    hint=did_you_mean(str(value), [str(c) for c in arg.choices]),
                    field=key,
                )
            out[key] = value
        return out

    def check_arity(self, n: int) -> None:
        lo, hi = self.arity
        if n < lo or (hi is not None and n > hi):
            want = str(lo) if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
            raise SpecError(
                f"op '{self.name}' got the wrong number of inputs",
                expected=f"{want} input(s)",
                found=f"{n}",
            )


_REGISTRY: dict[str, OpDef] = {}
_STEPS: dict[str, PointwiseStep] = {}


def register_op(op: OpDef, *, replace: bool = False) -> OpDef:
    """Add an op to the registry (plugins call this too), with the pointwise steps it declares.
    Names (of ops, and of steps) are unique unless replace=True."""
    if op.name in _REGISTRY and not replace:
        raise ValueError(f"op '{op.name}' is already registered")
    for step in op.steps:
        if step.name in _STEPS and not replace:
            raise ValueError(f"pointwise step '{step.name}' is already registered")
    _REGISTRY[op.name] = op
    for step in op.steps:
        _STEPS[step.name] = step
    return op


def get_step(name: str) -> PointwiseStep:
    """A pointwise step kind by name (KeyError if none is registered)."""
    return _STEPS[name]


def pointwise_steps() -> dict[str, PointwiseStep]:
    """Every registered pointwise step kind, by name, in registration order."""
    return dict(_STEPS)


def get_op(name: str) -> OpDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        # names that merely share a part with a much longer or shorter one are not suggestions
        # ('conv_transpose3d' is not a misspelt 'transpose')
        similar = [c for c in _REGISTRY if abs(len(c) - len(name)) <= max(2, len(name) // 4)]
        guess = did_you_mean(name, similar)
        raise SpecError(
            f"unknown op '{name}'",
            hint=(f"{guess} " if guess else "")
            + "`archgraph ops` lists the ops; an op a plugin registers needs `--plugin MODULE` "
            "(in Python: archgraph.plugins.load_plugin)",
            field="op",
        ) from None


def op_names() -> list[str]:
    return sorted(_REGISTRY)


def explicit(
    args: dict[str, Any], schema: Mapping[str, Arg], keep: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The args that differ from their defaults (plus `keep`): lowered calls then read like
    hand-written PyTorch, which leaves defaults out."""
    out = {}
    for key, value in args.items():
        arg = schema[key]
        if key in keep or arg.required or value != arg.kind.check(arg.default):
            out[key] = value
    return out


def same_shape(message: str, a: TensorType, b: TensorType, index: int) -> None:
    if a.shape != b.shape:
        raise ShapeMismatch(message, expected=str(a), found=str(b), input_index=index)


def need_rank(ins: Sequence[TensorType], ranks: Sequence[int], what: str) -> TensorType:
    x = ins[0]
    if x.rank not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ShapeMismatch(
            f"input must be {what}", expected=f"a rank-{want} tensor", found=str(x), input_index=0
        )
    return x
