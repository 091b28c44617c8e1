"""The block registry. A block is a function over the graph API,
`fn(b: Builder, *inputs: Value, **args) -> Value`; YAML templates and Python blocks alike."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from archgraph.errors import SpecError, did_you_mean
from archgraph.ops.registry import REQUIRED

BlockFn = Callable[..., Any]


@dataclass(frozen=True)
class BlockDef:
    name: str
    fn: BlockFn
    doc: str
    params: Mapping[str, Any]  # arg name -> default, REQUIRED when it has none
    num_inputs: int | None  # None: any number

    def check_args(self, args: Mapping[str, Any]) -> None:
        for key in args:
            if key not in self.params:
                raise SpecError(
                    f"unknown argument '{key}' for block '{self.name}'",
                    hint=did_you_mean(key, self.params)
                    or f"{self.name} takes: {', '.join(self.params) or 'nothing'}",
                )
        for key, default in self.params.items():
            if default is REQUIRED and key not in args:
                raise SpecError(
                    f"block '{self.name}' needs argument '{key}'",
                    expected=f"'{key}'",
                    found="nothing",
                )


def block_from_function(fn: BlockFn, name: str | None = None, doc: str | None = None) -> BlockDef:
    """Describe a Python block function: keyword-only parameters are its arguments."""
    sig = inspect.signature(fn)
    positional = [
        p
        for p in list(sig.parameters.values())[1:]
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    variadic = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
    params = {
        p.name: (REQUIRED if p.default is p.empty else p.default)
        for p in sig.parameters.values()
        if p.kind is p.KEYWORD_ONLY
    }
    text = doc or inspect.getdoc(fn) or ""
    return BlockDef(
        name or fn.__name__, fn, text.split("\n")[0], params, None if variadic else len(positional)
    )


_BLOCKS: dict[str, BlockDef] = {}


def register_block(
    block: BlockDef | BlockFn, *, name: str | None = None, replace: bool = False
) -> BlockDef:
    """Register a block (a BlockDef or a block function; plugins call this too)."""
    bdef = block if isinstance(block, BlockDef) else block_from_function(block, name)
    if bdef.name in _BLOCKS and not replace:
        raise ValueError(f"block '{bdef.name}' is already registered")
    _BLOCKS[bdef.name] = bdef
    return bdef


def builtin(fn: BlockFn) -> BlockFn:
    """Decorator for archgraph's own blocks."""
    register_block(fn)
    return fn


def get_block(name: str) -> BlockDef:
    if name not in _BLOCKS:
        raise SpecError(f"unknown block '{name}'", hint=did_you_mean(name, _BLOCKS))
    return _BLOCKS[name]


def block_names() -> list[str]:
    return sorted(_BLOCKS)
