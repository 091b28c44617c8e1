"""Spec expressions: `$name` or `${expr}` in a YAML value, e.g. `${2 if i == 0 else 1}`.

Specs are data, so this is not Python: an expression is parsed with `ast` and only numbers,
strings, booleans, names bound by the spec, arithmetic, comparisons, `and/or/not`, conditional
expressions, lists, indexing and a few pure functions are allowed. There is no attribute access,
no calls beyond the whitelist, no string formatting, and every value is bounded in size (integers
by 2**53, lists and strings by Limits.max_expr_items, exponents and rounding digits by 64), so an
expression always finishes quickly. A string that starts with `$$` is the literal text after the
first `$` (`$$x` is the string "$x").
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from archgraph.errors import SpecError, did_you_mean
from archgraph.spec.limits import Limits, limit_hint

MAX_INT = 2**53
MAX_EXPONENT = 64

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_WORDS = {"true": True, "false": False, "null": None}


def _round(x: Any, ndigits: Any = None) -> Any:
    if ndigits is not None and isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise SpecError(
            "round() digits out of range",
            expected=f"|digits| <= {MAX_EXPONENT}",
            found=str(ndigits),
        )
    return round(x) if ndigits is None else round(x, ndigits)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "int": int,
    "float": float,
    "round": _round,
    "abs": abs,
    "len": len,
    "sqrt": math.sqrt,
    "ceil": math.ceil,
    "floor": math.floor,
    "range": range,  # made a list by _call, after its length is checked
}


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$")


def _source(text: str) -> str:
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    if text[1:].isidentifier() and text[1:].isascii():
        return text[1:]
    raise SpecError(
        f"malformed expression {text[:60]!r}",
        expected="$name or ${expression} (or $$ for a literal '$')",
        found=text[:60],
    )


def evaluate(text: str, env: Mapping[str, Any], limits: Limits = Limits()) -> Any:
    """Evaluate one `$...` expression against the names in `env`."""
    if text.startswith("$$"):
        return text[1:]
    if len(text) > limits.max_expr_chars:
        raise SpecError(
            "expression too long",
            expected=f"at most {limits.max_expr_chars} characters",
            found=f"{len(text)}",
            hint=limit_hint("max_expr_chars"),
        )
    src = _source(text)
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        reason = getattr(e, "msg", None) or type(e).__name__
        raise SpecError(
            f"cannot parse expression {text[:60]!r}",
            expected="an arithmetic expression",
            found=reason,
        ) from None
    try:
        return _Evaluator(env, limits).eval(tree.body)
    except SpecError:
        raise
    except (ArithmeticError, TypeError, ValueError, IndexError, KeyError, RecursionError) as e:
        raise SpecError(
            f"expression {text[:60]!r} failed: {e}", hint="check the names and types it uses"
        ) from None


class _Evaluator:
    def __init__(self, env: Mapping[str, Any], limits: Limits) -> None:
        self.env = env
        self.limits = limits

    def check(self, value: Any) -> Any:
        """Bound every value an expression makes."""
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise SpecError(
                "expression value too large", expected="|value| <= 2**53", found=f"{value:.3e}"
            )
        if isinstance(value, complex):
            raise SpecError("expression value is not a real number", found=str(value))
        if isinstance(value, list | str | range) and len(value) > self.limits.max_expr_items:
            self.too_long(len(value))
        return value

    def too_long(self, n: int) -> None:
        raise SpecError(
            "expression value too long",
            expected=f"at most {self.limits.max_expr_items} items",
            found=str(n),
            hint=limit_hint("max_expr_items"),
        )

    def binop(self, op: ast.operator, left: Any, right: Any) -> Any:
        if isinstance(op, ast.Pow) and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SpecError(
                "exponent too large", expected=f"|exponent| <= {MAX_EXPONENT}", found=str(right)
            )
        if isinstance(op, ast.Mod) and isinstance(left, str):
            raise SpecError("'%' formatting of strings is not allowed in a spec expression")
        if isinstance(op, ast.Mult):
            for seq, n in ((left, right), (right, left)):
                if (
                    isinstance(seq, list | str)
                    and isinstance(n, int)
                    and n * len(seq) > self.limits.max_expr_items
                ):
                    self.too_long(n * len(seq))
        return self.check(_BINOPS[type(op)](left, right))

    def call(self, fn: str, args: list[Any]) -> Any:
        result = self.check(FUNCTIONS[fn](*args))
        return list(result) if isinstance(result, range) else result

    def eval(self, node: ast.AST) -> Any:
        match node:
            case ast.Constant(value=v) if isinstance(v, int | float | str | bool) or v is None:
                return self.check(v)
            case ast.Name(id=name):
                if name in self.env:
                    return self.env[name]
                if name in _WORDS:
                    return _WORDS[name]
                raise SpecError(
                    f"unknown name '{name}' in expression", hint=did_you_mean(name, self.env)
                )
            case ast.BinOp(left=a, op=op, right=b) if type(op) in _BINOPS:
                return self.binop(op, self.eval(a), self.eval(b))
            case ast.UnaryOp(op=ast.USub(), operand=a):
                return -self.eval(a)
            case ast.UnaryOp(op=ast.UAdd(), operand=a):
                return +self.eval(a)
            case ast.UnaryOp(op=ast.Not(), operand=a):
                return not self.eval(a)
            case ast.BoolOp(op=ast.And(), values=vs):
                result: Any = True
                for v in vs:
                    result = self.eval(v)
                    if not result:
                        return result
                return result
            case ast.BoolOp(op=ast.Or(), values=vs):
                result = False
                for v in vs:
                    result = self.eval(v)
                    if result:
                        return result
                return result
            case ast.Compare(left=a, ops=ops, comparators=cs) if all(
                type(op) in _CMPOPS for op in ops
            ):
                left = self.eval(a)
                for op, c in zip(ops, cs, strict=True):
                    right = self.eval(c)
                    if not _CMPOPS[type(op)](left, right):
                        return False
                    left = right
                return True
            case ast.IfExp(test=t, body=yes, orelse=no):
                return self.eval(yes) if self.eval(t) else self.eval(no)
            case ast.List(elts=es) | ast.Tuple(elts=es):
                return [self.eval(e) for e in es]
            case ast.Subscript(value=v, slice=s) if not isinstance(s, ast.Slice):
                return self.eval(v)[self.eval(s)]
            case ast.Call(func=ast.Name(id=fn), args=args, keywords=[]) if fn in FUNCTIONS:
                return self.call(fn, [self.eval(a) for a in args])
        raise SpecError(
            f"'{ast.unparse(node)[:60]}' is not allowed in a spec expression",
            hint="expressions allow arithmetic, comparisons, `x if c else y`, lists, indexing and "
            + ", ".join(FUNCTIONS),
        )
