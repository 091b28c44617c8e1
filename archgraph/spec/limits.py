"""Bounds on what an untrusted spec may ask for, so that loading one always ends quickly.

Every limit has a short name for the command line (`--limit nodes=200000`); in Python, pass
`archgraph.load(path, limits=Limits(max_graph_nodes=200_000))`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from archgraph.errors import SpecError, did_you_mean


@dataclass(frozen=True)
class Limits:
    """Bounds checked while a spec is read and built; each error names the limit to raise."""

    max_bytes: int = 1024 * 1024  # size of the spec text (UTF-8); the zoo's largest is 2 KiB
    max_depth: int = 64  # YAML nesting, and block calls nested inside block calls
    max_yaml_nodes: int = 100_000  # YAML values after expanding aliases and merges
    max_graph_nodes: int = 10_000  # nodes of the built graph (the zoo's largest has ~1,000)
    max_graph_edges: int = (
        100_000  # node inputs over all nodes (a deep dense block grows them quadratically)
    )
    max_repeat: int = 10_000  # `repeat:` of one entry
    max_tensor_elements: int = 2**31  # elements of any one tensor: node outputs and parameters
    max_expr_chars: int = 500  # characters of one `$` expression
    max_expr_items: int = 100_000  # elements of a list (nested lists counted through) or string
    # elements touched by all of a spec's expressions together: comparisons, `in`, min/max,
    # building and repeating lists, parsing numbers, big-integer words (see spec/expr.py Work)
    max_expr_work: int = 10_000_000

    def raised(self, **changes: int) -> Limits:
        return dataclasses.replace(self, **changes)


# command-line names (`--limit NAME=N`) -> Limits fields
LIMIT_NAMES: dict[str, str] = {
    "bytes": "max_bytes",
    "depth": "max_depth",
    "yaml_nodes": "max_yaml_nodes",
    "nodes": "max_graph_nodes",
    "edges": "max_graph_edges",
    "repeat": "max_repeat",
    "tensor_elements": "max_tensor_elements",
    "expr_chars": "max_expr_chars",
    "expr_items": "max_expr_items",
    "expr_work": "max_expr_work",
}


def limit_hint(field: str) -> str:
    """How to raise one limit, for error hints."""
    short = next(k for k, v in LIMIT_NAMES.items() if v == field)
    return f"if the spec is meant to be this large, raise the limit: --limit {short}=N (Limits.{field})"


def parse_limit(text: str) -> tuple[str, int]:
    """`NAME=N` from the command line -> (Limits field, value)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if name not in LIMIT_NAMES:
        raise SpecError(
            f"unknown limit '{name}'",
            expected=", ".join(LIMIT_NAMES),
            found=name,
            hint=did_you_mean(name, LIMIT_NAMES),
        )
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        value = 0
    if not sep or value < 1:
        raise SpecError(
            f"limit '{name}' needs a positive integer", expected=f"{name}=N", found=text
        )
    return LIMIT_NAMES[name], value


def limits_from(pairs: list[str], base: Limits = Limits()) -> Limits:
    """Limits with the command line's `NAME=N` settings applied."""
    return base.raised(**dict(parse_limit(p) for p in pairs))
