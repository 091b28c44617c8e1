"""One small expression tree, rendered to CUDA C and evaluated in torch.

Kernels are built from these trees, never from strings pasted together, so that the same object
the C renderer prints can be evaluated on the host: float expressions over torch tensors (the
host path of a kernel), integer index expressions over int64 tensors (the addresses a kernel
reads and writes). Float expressions come from the registry's pointwise steps
(the ops' PointwiseStep.expr, C expressions such as "fmaxf(x, 0.0f)"), parsed here; their
derivatives, for the backward kernels, are derived symbolically (`diff`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import torch

# ---- float expressions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Neg:
    a: Expr


@dataclass(frozen=True)
class Bin:
    op: str  # + - * /
    a: Expr
    b: Expr


@dataclass(frozen=True)
class Cmp:
    op: str  # > <
    a: Expr
    b: Expr


@dataclass(frozen=True)
class Select:
    cond: Cmp
    a: Expr
    b: Expr


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple[Expr, ...]


Expr = Union[Num, Var, Neg, Bin, Select, Call]  # noqa: UP007 - a runtime alias

# C math functions a step may use: their torch counterparts (host evaluation).
_TORCH_FN: dict[str, Callable[..., torch.Tensor]] = {
    "expf": torch.exp,
    "tanhf": torch.tanh,
    "erff": torch.erf,
    "fmaxf": torch.maximum,
    "fminf": torch.minimum,
    "sqrtf": torch.sqrt,
    "rsqrtf": torch.rsqrt,
    "ag_saturated": lambda d, x: torch.where(torch.isfinite(d) | ~torch.isfinite(x), d, 0.0),
}
FUNCTIONS = frozenset(_TORCH_FN)


def saturated(d: Expr, x: Expr) -> Expr:
    """d where finite (or x is not): the derivative of a saturating step. The steps'
    derivatives are bounded, so an infinite or NaN value at a finite x is an overflow of the
    formula (expf(-x) = inf in sigmoid or silu far below 0), where the true value is 0."""
    return d if isinstance(d, Num) else Call("ag_saturated", (d, x))


def c_float(v: float) -> str:
    """A float literal C reads as the same float32 value."""
    if not math.isfinite(v):
        raise ValueError(f"no C literal for {v}")
    text = repr(float(v))
    return f"{text}f"


def to_c(e: Expr) -> str:
    """C source of a float expression (fully parenthesized where precedence could bite)."""
    if isinstance(e, Num):
        return c_float(e.value) if e.value >= 0 else f"(-{c_float(-e.value)})"
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Neg):
        return f"(-{to_c(e.a)})"
    if isinstance(e, Bin):
        return f"({to_c(e.a)} {e.op} {to_c(e.b)})"
    if isinstance(e, Select):
        c = e.cond
        return f"(({to_c(c.a)} {c.op} {to_c(c.b)}) ? {to_c(e.a)} : {to_c(e.b)})"
    if isinstance(e, Call):
        return f"{e.fn}({', '.join(to_c(a) for a in e.args)})"
    raise TypeError(f"not an expression: {e!r}")


def evaluate(e: Expr, env: Mapping[str, Any]) -> Any:
    """Evaluate on the host: variables are torch tensors (or floats) from `env`."""
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Var):
        return env[e.name]
    if isinstance(e, Neg):
        return -evaluate(e.a, env)
    if isinstance(e, Bin):
        a, b = evaluate(e.a, env), evaluate(e.b, env)
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        return a / b
    if isinstance(e, Select):
        a, b = evaluate(e.cond.a, env), evaluate(e.cond.b, env)
        cond = a > b if e.cond.op == ">" else a < b
        like = _like(env)
        return torch.where(torch.as_tensor(cond), _tensor(evaluate(e.a, env), like),
                           _tensor(evaluate(e.b, env), like))  # fmt: skip
    if isinstance(e, Call):
        like = _like(env)
        args = [_tensor(evaluate(a, env), like) for a in e.args]
        return _TORCH_FN[e.fn](*args)
    raise TypeError(f"not an expression: {e!r}")


def _like(env: Mapping[str, Any]) -> torch.Tensor:
    for v in env.values():
        if isinstance(v, torch.Tensor):
            return v
    raise ValueError("host evaluation needs at least one tensor variable")


def _tensor(v: Any, like: torch.Tensor) -> torch.Tensor:
    return v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=like.dtype)


# ---- parsing the registry's C expressions ------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)f?|([A-Za-z_]\w*)|(.))")


def parse(text: str) -> Expr:
    """Parse a C float expression: literals, variables, + - * /, unary minus, calls of
    FUNCTIONS, parentheses. Anything else raises ValueError (naming the text)."""
    tokens: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(text):
        num, name, sym = m.groups()
        if num is not None:
            tokens.append(("num", num))
        elif name is not None:
            tokens.append(("name", name))
        elif sym is not None and not sym.isspace():
            tokens.append(("sym", sym))
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(sym: str | None = None) -> tuple[str, str]:
        nonlocal pos
        tok = peek()
        if tok is None or (sym is not None and tok != ("sym", sym)):
            raise ValueError(f"cannot parse C expression {text!r}: expected {sym or 'more'}")
        pos += 1
        return tok

    def expr() -> Expr:
        e = term()
        while peek() in (("sym", "+"), ("sym", "-")):
            op = take()[1]
            e = Bin(op, e, term())
        return e

    def term() -> Expr:
        e = unary()
        while peek() in (("sym", "*"), ("sym", "/")):
            op = take()[1]
            e = Bin(op, e, unary())
        return e

    def unary() -> Expr:
        if peek() == ("sym", "-"):
            take()
            return Neg(unary())
        return primary()

    def primary() -> Expr:
        kind, value = take()
        if kind == "num":
            return Num(float(value))
        if kind == "name":
            if peek() == ("sym", "("):
                if value not in FUNCTIONS:
                    raise ValueError(f"C expression {text!r} calls unknown function {value}")
                take("(")
                args = [expr()]
                while peek() == ("sym", ","):
                    take()
                    args.append(expr())
                take(")")
                return Call(value, tuple(args))
            return Var(value)
        if value == "(":
            e = expr()
            take(")")
            return e
        raise ValueError(f"cannot parse C expression {text!r} at {value!r}")

    result = expr()
    if pos != len(tokens):
        raise ValueError(f"cannot parse C expression {text!r}: trailing {tokens[pos][1]!r}")
    return result


def variables(e: Expr) -> set[str]:
    if isinstance(e, Var):
        return {e.name}
    if isinstance(e, Num):
        return set()
    if isinstance(e, Neg):
        return variables(e.a)
    if isinstance(e, Bin):
        return variables(e.a) | variables(e.b)
    if isinstance(e, Select):
        return variables(e.cond.a) | variables(e.cond.b) | variables(e.a) | variables(e.b)
    return set().union(*(variables(a) for a in e.args))


def substitute(e: Expr, env: Mapping[str, Expr]) -> Expr:
    """Replace variables by expressions."""
    if isinstance(e, Var):
        return env.get(e.name, e)
    if isinstance(e, Num):
        return e
    if isinstance(e, Neg):
        return Neg(substitute(e.a, env))
    if isinstance(e, Bin):
        return Bin(e.op, substitute(e.a, env), substitute(e.b, env))
    if isinstance(e, Select):
        c = Cmp(e.cond.op, substitute(e.cond.a, env), substitute(e.cond.b, env))
        return Select(c, substitute(e.a, env), substitute(e.b, env))
    return Call(e.fn, tuple(substitute(a, env) for a in e.args))


# ---- symbolic derivatives ---------------------------------------------------------------------

ZERO, ONE = Num(0.0), Num(1.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def add(a: Expr, b: Expr) -> Expr:
    if a == ZERO:
        return b
    if b == ZERO:
        return a
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value + b.value)
    return Bin("+", a, b)


def sub(a: Expr, b: Expr) -> Expr:
    if b == ZERO:
        return a
    if a == ZERO:
        return neg(b)
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value - b.value)
    return Bin("-", a, b)


def mul(a: Expr, b: Expr) -> Expr:
    if a == ZERO or b == ZERO:
        return ZERO
    if a == ONE:
        return b
    if b == ONE:
        return a
    if isinstance(a, Num) and isinstance(b, Num):
        return Num(a.value * b.value)
    return Bin("*", a, b)


def div(a: Expr, b: Expr) -> Expr:
    if a == ZERO:
        return ZERO
    if b == ONE:
        return a
    return Bin("/", a, b)


def neg(a: Expr) -> Expr:
    if isinstance(a, Num):
        return Num(-a.value)
    if isinstance(a, Neg):
        return a.a
    return Neg(a)


def select(cond: Cmp, a: Expr, b: Expr) -> Expr:
    return a if a == b else Select(cond, a, b)


def diff(e: Expr, var: str) -> Expr:
    """d e / d var. Piecewise functions take the derivative of the branch chosen with strict
    comparisons (fmaxf(x, 0) has derivative 0 at 0), as PyTorch's threshold/hardtanh do."""
    if isinstance(e, Num):
        return ZERO
    if isinstance(e, Var):
        return ONE if e.name == var else ZERO
    if isinstance(e, Neg):
        return neg(diff(e.a, var))
    if isinstance(e, Bin):
        da, db = diff(e.a, var), diff(e.b, var)
        if e.op == "+":
            return add(da, db)
        if e.op == "-":
            return sub(da, db)
        if e.op == "*":
            return add(mul(da, e.b), mul(e.a, db))
        if db == ZERO:
            return div(da, e.b)
        return div(sub(mul(da, e.b), mul(e.a, db)), mul(e.b, e.b))
    if isinstance(e, Select):
        return select(e.cond, diff(e.a, var), diff(e.b, var))
    if isinstance(e, Call):
        args = e.args
        d = [diff(a, var) for a in args]
        if e.fn == "expf":
            return mul(e, d[0])
        if e.fn == "tanhf":
            return mul(sub(ONE, mul(e, e)), d[0])
        if e.fn == "erff":
            gauss = Call("expf", (neg(mul(args[0], args[0])),))
            return mul(mul(Num(_TWO_OVER_SQRT_PI), gauss), d[0])
        if e.fn == "fmaxf":
            return select(Cmp(">", args[0], args[1]), d[0], d[1])
        if e.fn == "fminf":
            return select(Cmp("<", args[0], args[1]), d[0], d[1])
        if e.fn == "sqrtf":
            return div(d[0], mul(Num(2.0), e))
        if e.fn == "rsqrtf":
            return mul(mul(Num(-0.5), mul(e, mul(e, e))), d[0])
    raise TypeError(f"cannot differentiate {e!r}")


# ---- integer index expressions ----------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    """An integer expression of the linear index `i`: i, constants, and + * / % by constants
    (all values non-negative, so C's truncating division is Python's floor division)."""

    op: str  # "i", "const", "+", "*", "/", "%"
    args: tuple[Any, ...] = ()

    def __add__(self, other: Index) -> Index:
        if other.op == "const" and other.args[0] == 0:
            return self
        if self.op == "const" and self.args[0] == 0:
            return other
        return Index("+", (self, other))


I = Index("i")  # noqa: E741 - the kernel's own name for it


def const(v: int) -> Index:
    return Index("const", (v,))


def times(a: Index, c: int) -> Index:
    if c == 0:
        return const(0)
    return a if c == 1 else Index("*", (a, c))


def floordiv(a: Index, c: int) -> Index:
    return a if c == 1 else Index("/", (a, c))


def mod(a: Index, c: int) -> Index:
    return const(0) if c == 1 else Index("%", (a, c))


def index_c(e: Index, var: str = "i") -> str:
    if e.op == "i":
        return var
    if e.op == "const":
        return str(e.args[0])
    a, b = e.args
    if e.op == "+":
        return f"{index_c(a, var)} + {index_c(b, var)}"
    return f"({index_c(a, var)} {e.op} {b})" if e.op != "*" else f"{_atom(a, var)} * {b}"


def _atom(e: Index, var: str) -> str:
    text = index_c(e, var)
    return f"({text})" if e.op == "+" else text


def index_eval(e: Index, i: Any) -> Any:
    """Evaluate on the host: `i` an int or an int64 tensor of linear indices."""
    if e.op == "i":
        return i
    if e.op == "const":
        return e.args[0] + 0 * i
    a, b = e.args
    if e.op == "+":
        return index_eval(a, i) + index_eval(b, i)
    va = index_eval(a, i)
    if e.op == "*":
        return va * b
    if e.op == "/":
        return va // b
    return va % b
