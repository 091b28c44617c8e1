"""Argument types of Python blocks, read from their annotations.

A block is a plain function (`def dense_block(b, x, *, layers: int, ...)`), so its keyword
parameters' annotations are the only statement of what it takes. The YAML front end checks spec
values against them before calling the block (a wrong type is then a located error, not an
exception deep inside the block), and the JSON Schema uses them. Annotations written as strings
(`from __future__ import annotations`) are resolved by looking names up in the block's module,
never by evaluating them; an annotation this module does not understand leaves that argument
unchecked.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from archgraph.blocks.registry import BlockDef
from archgraph.ops.registry import BOOL, FLOAT, INT, INTS, PAIR, STR, ArgKind, optional

_SIMPLE: dict[Any, ArgKind] = {int: INT, float: FLOAT, bool: BOOL, str: STR}
_SEQUENCES = (list, tuple, Sequence)
_cache: dict[Callable[..., Any], dict[str, ArgKind]] = {}
_UNKNOWN = object()


def _kind(annotation: Any) -> ArgKind | None:
    if isinstance(annotation, type) and annotation in _SIMPLE:
        return _SIMPLE[annotation]
    origin, params = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = set(params)
        if len(params) == 2 and type(None) in members:
            inner = _kind(next(p for p in params if p is not type(None)))
            return optional(inner) if inner is not None else None
        if members == {int, tuple[int, int]}:
            return PAIR
        return None
    if origin in _SEQUENCES and params and params[0] is int and params[1:] in ((), (Ellipsis,)):
        return INTS
    return None


def _resolve(node: ast.AST, namespace: dict[str, Any]) -> Any:
    """The object an annotation's source names: names, attributes, subscripts and `|` only."""
    match node:
        case ast.Constant(value=v) if v is None or v is Ellipsis:
            return v
        case ast.Name(id=name):
            return namespace.get(name, getattr(builtins, name, _UNKNOWN))
        case ast.Attribute(value=base, attr=attr):
            return getattr(_resolve(base, namespace), attr, _UNKNOWN)
        case ast.Subscript(value=base, slice=ast.Tuple(elts=elts)):
            return _resolve(base, namespace)[tuple(_resolve(e, namespace) for e in elts)]
        case ast.Subscript(value=base, slice=index):
            return _resolve(base, namespace)[_resolve(index, namespace)]
        case ast.BinOp(left=a, op=ast.BitOr(), right=b):
            left, right = _resolve(a, namespace), _resolve(b, namespace)
            return (type(None) if left is None else left) | (type(None) if right is None else right)
    return _UNKNOWN


def _annotation(fn: Callable[..., Any], param: inspect.Parameter) -> Any:
    annotation = param.annotation
    if not isinstance(annotation, str):
        return annotation
    try:
        return _resolve(ast.parse(annotation, mode="eval").body, getattr(fn, "__globals__", {}))
    except Exception:  # an unusual annotation: leave the argument unchecked
        return _UNKNOWN


def param_kinds(block: BlockDef) -> dict[str, ArgKind]:
    """The checkable arguments of a block: name -> ArgKind (unannotated ones are left out)."""
    if block.fn not in _cache:
        try:
            parameters = inspect.signature(block.fn).parameters
        except (TypeError, ValueError):
            parameters = {}
        kinds = {}
        for name in block.params:
            if name in parameters:
                kind = _kind(_annotation(block.fn, parameters[name]))
                if kind is not None:
                    kinds[name] = kind
        _cache[block.fn] = kinds
    return _cache[block.fn]
