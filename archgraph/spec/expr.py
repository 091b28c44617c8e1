"""Spec expressions: `$name` or `${expr}` in a YAML value, e.g. `${2 if i == 0 else 1}`.

Specs are data, so this is not Python: an expression is parsed with `ast` and only numbers,
strings, booleans, names bound by the spec, arithmetic, comparisons, `and/or/not`, conditional
expressions, lists, indexing and a few pure functions are allowed. There is no attribute access,
no calls beyond the whitelist, no string formatting, and every value is bounded in size (integers
by 2**53, the elements of lists and strings by Limits.max_expr_items, exponents and rounding
digits by 64). Size alone does not bound time (`[[0]*99999]*99999 == [[0]*99999]*99999` is
short, and its values are small as Python stores them, but it compares 10**10 elements), so
every operation is also charged the elements it touches — comparisons, `in`, min/max, building
and repeating lists, parsing numbers, big-integer arithmetic — against Limits.max_expr_work,
one budget for all the expressions of a spec (see Work). An expression therefore always
finishes quickly. A string that starts with `$$` is the literal text after the first `$` (`$$x`
is the string "$x").
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
_INT_BITS = MAX_INT.bit_length()

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


def show(value: Any) -> str:
    """A value for an error message. Never fails and never floods the message: Python refuses
    to print an integer of more than 4300 digits, so large integers are described instead."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}an integer of about {digits} digits"
    if isinstance(value, list | str | dict):
        return f"a {type(value).__name__} of length {len(value)}"
    return repr(value)[:60]


def _round(x: Any, ndigits: Any = None) -> Any:
    if ndigits is not None and isinstance(ndigits, int) and abs(ndigits) > MAX_EXPONENT:
        raise SpecError(
            "round() digits out of range",
            expected=f"|digits| <= {MAX_EXPONENT}",
            found=show(ndigits),
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


class Work:
    """The elements the expressions of one spec have touched, against Limits.max_expr_work.

    One Work is shared by every expression of a spec (a block repeated 10,000 times evaluates
    its expressions 10,000 times). Element counts of lists are remembered per list object (the
    object is kept, so its id is never reused)."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self.done = 0
        self._sizes: dict[int, tuple[Any, int]] = {}

    def charge(self, n: int, what: str) -> None:
        self.done += max(1, n)
        if self.done > self.limits.max_expr_work:
            raise SpecError(
                f"expression does too much work ({what})",
                expected=f"at most {self.limits.max_expr_work} element operations for the "
                "expressions of a spec (comparisons, `in`, min/max, building lists, numbers)",
                found=f"more than {self.limits.max_expr_work}",
                hint=limit_hint("max_expr_work"),
            )

    def size(self, value: Any) -> int:
        """Elements in a value, nested lists and mappings counted through (a scalar is 1)."""
        if isinstance(value, str):
            return max(1, len(value))
        if not isinstance(value, list | tuple | dict):
            return 1
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        return self.record(value, sum(self.size(v) for v in items))

    def record(self, value: Any, n: int) -> int:
        """Remember the size of a list made from lists whose sizes are known (without walking
        it: a list made by repetition holds 99,999 references to one list)."""
        if isinstance(value, list | tuple | dict):
            self._sizes[id(value)] = (value, max(1, n))
        return max(1, n)


def evaluate(
    text: str, env: Mapping[str, Any], limits: Limits = Limits(), work: Work | None = None
) -> Any:
    """Evaluate one `$...` expression against the names in `env`; `work` is the spec's budget
    (a fresh one, for this expression alone, if None)."""
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
        return _Evaluator(env, limits, work or Work(limits)).eval(tree.body)
    except SpecError:
        raise
    except (ArithmeticError, TypeError, ValueError, IndexError, KeyError, RecursionError) as e:
        raise SpecError(
            f"expression {text[:60]!r} failed: {e}", hint="check the names and types it uses"
        ) from None


class _Evaluator:
    def __init__(self, env: Mapping[str, Any], limits: Limits, work: Work) -> None:
        self.env = env
        self.limits = limits
        self.work = work

    def check(self, value: Any) -> Any:
        """Bound every value an expression makes: integers, and elements nested or not."""
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            self.too_large(value)
        if isinstance(value, complex):
            raise SpecError("expression value is not a real number", found=show(value))
        if isinstance(value, list | str | range) and len(value) > self.limits.max_expr_items:
            self.too_long(len(value))
        if isinstance(value, list) and self.work.size(value) > self.limits.max_expr_items:
            self.too_long(self.work.size(value))
        return value

    @staticmethod
    def too_large(value: Any, found: str | None = None) -> None:
        raise SpecError(
            "expression value too large", expected="|value| <= 2**53", found=found or show(value)
        )

    def int_bits(self, op: ast.operator, left: Any, right: Any) -> None:
        """Charge integer arithmetic by its operands' size in 64-bit words, and refuse a product
        or power whose result is surely beyond 2**53 before computing it (it would be refused
        afterwards anyway; computing it could take long)."""
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right)):
            return
        a, b = left.bit_length(), right.bit_length()
        self.work.charge((a + b) // 64, "integer arithmetic")
        if isinstance(op, ast.Mult) and left and right:
            bits = a + b - 1  # the product has at least this many bits
        elif isinstance(op, ast.Pow) and right > 0 and a > 1:
            bits = (a - 1) * right + 1
        else:
            return
        if bits > _INT_BITS:
            self.too_large(None, f"a result of at least {bits} bits")

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
                "exponent too large", expected=f"|exponent| <= {MAX_EXPONENT}", found=show(right)
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
        self.int_bits(op, left, right)
        if isinstance(left, list) and isinstance(right, list):  # concatenation
            self.work.charge(len(left) + len(right), "building a list")
            size = self.work.size(left) + self.work.size(right)
        elif isinstance(op, ast.Mult) and isinstance(left, list | str) != isinstance(
            right, list | str
        ):
            seq, n = (left, right) if isinstance(left, list | str) else (right, left)
            self.work.charge(len(seq) * n, "repeating a list or string")
            size = self.work.size(seq) * n
        else:
            size = None
        result = _BINOPS[type(op)](left, right)
        if isinstance(result, str):
            self.work.charge(len(result), "building a string")
        if size is not None:
            self.work.record(result, size)
        return self.check(result)

    def compare(self, op: ast.cmpop, left: Any, right: Any) -> bool:
        """Comparing sequences touches their elements; `x in xs` compares x with each one."""
        self.work.charge(self.work.size(left) + self.work.size(right), "comparison")
        return _CMPOPS[type(op)](left, right)

    def call(self, fn: str, args: list[Any]) -> Any:
        if fn in ("min", "max"):
            self.work.charge(sum(self.work.size(a) for a in args), f"{fn}()")
        elif fn in ("int", "float") and args and isinstance(args[0], str):
            self.work.charge(len(args[0]), f"{fn}() of a string")
        result = FUNCTIONS[fn](*args)
        if isinstance(result, range):
            self.check(result)
            self.work.charge(len(result), "range()")
            result = list(result)
            self.work.record(result, len(result))
        return self.check(result)

    def eval(self, node: ast.AST) -> Any:
        match node:
            case ast.Constant(value=v) if isinstance(v, int | float | str | bool) or v is None:
                return self.check(v)
            case ast.Name(id=name):
                if name in self.env:
                    return self.env[name]  # values of the spec's own YAML, bounded by its limits
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
                    if not self.compare(op, left, right):
                        return False
                    left = right
                return True
            case ast.IfExp(test=t, body=yes, orelse=no):
                return self.eval(yes) if self.eval(t) else self.eval(no)
            case ast.List(elts=es) | ast.Tuple(elts=es):
                items = [self.eval(e) for e in es]
                self.work.charge(len(items), "building a list")
                self.work.record(items, sum(self.work.size(i) for i in items))
                return self.check(items)
            case ast.Subscript(value=v, slice=s) if not isinstance(s, ast.Slice):
                return self.eval(v)[self.eval(s)]
            case ast.Call(func=ast.Name(id=fn), args=args, keywords=[]) if fn in FUNCTIONS:
                return self.call(fn, [self.eval(a) for a in args])
        raise SpecError(
            f"'{ast.unparse(node)[:60]}' is not allowed in a spec expression",
            hint="expressions allow arithmetic, comparisons, `x if c else y`, lists, indexing and "
            + ", ".join(FUNCTIONS),
        )
