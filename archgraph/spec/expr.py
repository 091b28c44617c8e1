"""Spec expressions: `$name` or `${expr}` in a YAML value, e.g. `${2 if i == 0 else 1}`.

Specs are data, so this is not Python: an expression is parsed with `ast` and only numbers,
strings, booleans, names bound by the spec, arithmetic, comparisons, `and/or/not`, conditional
expressions, lists, indexing and a few pure functions are allowed. There is no attribute access,
no calls beyond the whitelist, and results are bounded in size.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from archgraph.errors import SpecError, did_you_mean

MAX_EXPR_CHARS = 500
MAX_INT = 2**53

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
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": min,
    "max": max,
    "int": int,
    "float": float,
    "round": round,
    "abs": abs,
    "len": len,
    "sqrt": math.sqrt,
    "ceil": math.ceil,
    "floor": math.floor,
    "range": lambda *a: list(range(*a)),
}


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("$")


def _source(text: str) -> str:
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1]
    if text[1:].isidentifier():
        return text[1:]
    raise SpecError(
        f"malformed expression {text!r}",
        expected="$name or ${expression}",
        found=text,
    )


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """Evaluate one `$...` expression against the names in `env`."""
    if len(text) > MAX_EXPR_CHARS:
        raise SpecError("expression too long", expected=f"at most {MAX_EXPR_CHARS} characters", found=f"{len(text)}")
    src = _source(text)
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except SyntaxError as e:
        raise SpecError(f"cannot parse expression {text!r}", expected="an arithmetic expression", found=str(e.msg)) from None
    try:
        return _eval(tree.body, env)
    except SpecError:
        raise
    except (ArithmeticError, TypeError, ValueError, IndexError, KeyError, RecursionError) as e:
        raise SpecError(f"expression {text!r} failed: {e}", hint="check the names and types it uses") from None


def _check_size(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise SpecError("expression result too large", expected="|value| <= 2**53", found=f"{value:.3e}")
    if isinstance(value, list | str) and len(value) > 100_000:
        raise SpecError("expression result too long", expected="at most 100000 items", found=str(len(value)))
    return value


def _eval(node: ast.AST, env: Mapping[str, Any]) -> Any:
    match node:
        case ast.Constant(value=v) if isinstance(v, int | float | str | bool) or v is None:
            return v
        case ast.Name(id=name):
            if name in env:
                return env[name]
            if name in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[name]
            raise SpecError(f"unknown name '{name}' in expression", hint=did_you_mean(name, env))
        case ast.BinOp(left=a, op=op, right=b) if type(op) in _BINOPS:
            left, right = _eval(a, env), _eval(b, env)
            if isinstance(op, ast.Pow) and isinstance(right, int | float) and abs(right) > 64:
                raise SpecError("exponent too large", expected="|exponent| <= 64", found=str(right))
            if isinstance(op, ast.Mult):
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, list | str) and isinstance(n, int) and n * len(seq) > 100_000:
                        raise SpecError("expression result too long", expected="at most 100000 items", found=str(n * len(seq)))
            return _check_size(_BINOPS[type(op)](left, right))
        case ast.UnaryOp(op=ast.USub(), operand=a):
            return -_eval(a, env)
        case ast.UnaryOp(op=ast.UAdd(), operand=a):
            return +_eval(a, env)
        case ast.UnaryOp(op=ast.Not(), operand=a):
            return not _eval(a, env)
        case ast.BoolOp(op=ast.And(), values=vs):
            result: Any = True
            for v in vs:
                result = _eval(v, env)
                if not result:
                    return result
            return result
        case ast.BoolOp(op=ast.Or(), values=vs):
            result = False
            for v in vs:
                result = _eval(v, env)
                if result:
                    return result
            return result
        case ast.Compare(left=a, ops=ops, comparators=cs):
            left = _eval(a, env)
            for op, c in zip(ops, cs, strict=True):
                if type(op) not in _CMPOPS:
                    break
                right = _eval(c, env)
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            else:
                return True
        case ast.IfExp(test=t, body=yes, orelse=no):
            return _eval(yes, env) if _eval(t, env) else _eval(no, env)
        case ast.List(elts=es) | ast.Tuple(elts=es):
            return [_eval(e, env) for e in es]
        case ast.Subscript(value=v, slice=s):
            return _eval(v, env)[_eval(s, env)]
        case ast.Call(func=ast.Name(id=fn), args=args, keywords=[]) if fn in FUNCTIONS:
            return _check_size(FUNCTIONS[fn](*[_eval(a, env) for a in args]))
    raise SpecError(
        f"'{ast.unparse(node)}' is not allowed in a spec expression",
        hint="expressions allow arithmetic, comparisons, `x if c else y`, lists and "
        + ", ".join(FUNCTIONS),
    )
