"""Hypothesis strategies that mutate valid specs, and the oracle every mutated spec must satisfy.

Used by tests/spec/test_fuzz.py (CI) and benchmarks/fuzz_long.py (the long run). A case is the
text of a spec: a zoo spec or a small hand-written one, changed at the text level (character
edits, truncation, odd unicode, YAML syntax, alias bombs, deep nesting) or at the data level
(keys deleted or renamed, values of the wrong type, rewired `in:`, swapped ops and blocks,
absurd sizes and repeats, shared structures that serialize as aliases).

The oracle (`check_case`): loading either succeeds — and then the graph survives a round trip
through graph_to_yaml — or raises a SpecError located in the spec file. Anything else (another
exception, a RuleCrash, an error without a line) is a bug.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import yaml
from hypothesis import strategies as st

import archgraph
from archgraph.blocks import block_names
from archgraph.errors import SpecError
from archgraph.ops import op_names
from archgraph.spec import RuleCrash, load_spec_text, zoo_path
from archgraph.spec.emit import graph_to_yaml
from archgraph.spec.limits import Limits

FILE = "fuzz.yaml"

SMALL_SPECS = {
    "tiny_cnn": """\
name: tiny
params: {classes: 10, width: 8}
inputs: {x: [3, 16, 16]}
blocks:
  unit:
    params: {c: null, stride: 1}
    nodes:
      conv: {op: conv2d, in: input, out_channels: $c, kernel_size: 3, stride: $stride, padding: 1, bias: false}
      bn: {op: batchnorm, eps: 1e-5}
      act: {op: relu}
nodes:
  stem: {block: unit, in: x, c: $width}
  stage: {block: unit, repeat: 2, c: "${width * (i + 2)}", stride: "${2 if i == 0 else 1}"}
  skip: {op: conv2d, in: stem, out_channels: 24, kernel_size: 1, stride: 2}
  sum: {op: add, in: [stage, skip]}
  pool: {op: adaptive_avgpool2d, output_size: 1}
  flat: {op: flatten}
  fc: {op: linear, out_features: $classes}
outputs: [fc]
""",
    "anchors": """\
archgraph: 1
name: anchors
description: shared argument sets through YAML anchors and merge keys
inputs:
  x: [4, 8, 8]
  y: {shape: [4, 8, 8], dtype: float32}
nodes:
  a: &conv {op: conv2d, in: x, out_channels: 4, kernel_size: 3, padding: 1}
  b: {<<: *conv, in: y}
  c: {op: concat, in: [a, b], dim: 1}
  d: {op: maxpool2d, kernel_size: 2, stride: 2, ceil_mode: true}
  e: {op: gelu, approximate: tanh, when: "${1 < 2 and not false}"}
outputs: [e, c]
""",
    "tokens": """\
name: tokens
params: {dim: 32, heads: 4, depth: 2}
inputs: {tokens: [10, $dim]}
blocks:
  layer:
    params: {d: null, h: 2}
    nodes:
      norm: {op: layernorm, in: input, eps: 1.0e-6}
      attn: {op: mhsa, num_heads: $h}
      res: {op: add, in: [attn, input]}
      fc: {op: linear, out_features: "${d * 2}"}
      act: {op: gelu}
      proj: {op: linear, out_features: $d}
      out: {op: add, in: [proj, res]}
    output: out
nodes:
  enc: {block: layer, in: tokens, repeat: $depth, d: $dim, h: $heads}
  cls: {op: select, dim: 1, index: 0}
  head: {op: linear, out_features: 3}
""",
    "dense": """\
name: dense_small
inputs: {img: [3, 32, 32]}
nodes:
  stem: {op: conv2d, in: img, out_channels: 16, kernel_size: 3, padding: 1}
  db: {block: dense_block, layers: 3, growth_rate: 8, bn_size: 2}
  tr: {block: dense_transition, compression: 0.5}
  se: {block: squeeze_excite, rd_ratio: 0.25}
  pool: {op: adaptive_avgpool2d}
  flat: {op: flatten}
  fc: {op: linear, out_features: 5, bias: false}
""",
}

ODD_CHARS = [
    "\ufeff",  # byte order mark
    "\x00",
    "\x07",
    "\x1b",
    "\x7f",
    "\x85",
    "\u200b",  # zero width space
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u2028",  # line separator
    "\ud800",  # lone surrogate
    "\udfff",
    "\ufffe",
    "\u0301",  # combining acute accent
    "\u043e",  # Cyrillic o, looks like 'o'
    "\uff11",  # fullwidth digit one
    "\U0001f600",
    "\t",
    "\r",
    "\r\n",
]
SNIPPETS = [
    *ODD_CHARS,
    "!!python/object/apply:os.system ['true'] ",
    "!!python/name:os.system ",
    "!!binary aGVsbG8= ",
    "!!set {a, b} ",
    "!!timestamp 2001-12-14 ",
    "!custom ",
    "!!int ",
    "!!float ",
    "!!str ",
    " &a ",
    " *a ",
    " *nope ",
    "<<: *a\n",
    "<<: 3\n",
    "&r [*r]",
    "&m {k: *m}",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "%TAG ! tag:example.com,2000:\n",
    "? [a, b]\n: 1\n",
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    '"',
    "#",
    "|\n",
    ">-\n",
    "\\",
    "\\x00",
    "9" * 5000,
    "1" + "0" * 400,
    "1e999",
    "-.inf",
    ".nan",
    "0x1F",
    "0o17",
    "010",
    "1_000",
    "1:30",
    "yes",
    "on",
    "~",
    "null",
    "true",
    "$",
    "${",
    "$$",
    "${1/0}",
    "${range(10**9)}",
    "${2**10000}",
    "${round(5, -2**53)}",
    "${'%999999999d' % 1}",
    "${__import__('os').system('true')}",
    "${().__class__.__mro__}",
    "\n  " * 3,
    "  ",
    "\n",
]
EXPRESSIONS = [
    "${1/0}",
    "${range(10**9)}",
    "${range(0, 2**53, 2**20)}",
    "${2**10000}",
    "${9**9**9}",
    "${'a' * 10**9}",
    "${[1] * 10**7}",
    "${[[0] * 1000] * 1000}",
    "${round(5, -2**53)}",
    "${round(1.5, 10**9)}",
    "${'%999999999d' % 1}",
    "${__import__('os')}",
    "${().__class__}",
    "${open('/etc/passwd')}",
    "${(lambda: 1)()}",
    "${[x for x in range(3)]}",
    "${[1, 2][0:1]}",
    "${[1, 2][5]}",
    "${int('9' * 5000)}",
    "${int(1e300)}",
    "${float('nan')}",
    "${float('inf')}",
    "${sqrt(-1)}",
    "${(-8) ** 0.5}",
    "${len(5)}",
    "${max()}",
    "${min([])}",
    "${{'a': 1}}",
    "${" + "(" * 300 + "1" + ")" * 300 + "}",
    "${" + "-" * 490 + "1}",
    "${" + "1+" * 400 + "1}",
    "${10**15}",
    "${-1}",
    "${0}",
    "${i}",
    "${x if}",
    "$undefined",
    "$",
    "${}",
    "$$literal",
    "${'x' in 5}",
    "${1 is 1}",
    "${1 < 'a'}",
]
BIG_INTS = [0, -1, -7, 2**31, 2**53 + 1, 10**9, 10**15, 10**30, 10**400]


@cache
def seeds() -> dict[str, str]:
    """Valid spec texts to mutate: every zoo spec and the small ones above."""
    out = {name: zoo_path(name).read_text(encoding="utf-8") for name in archgraph.zoo()}
    out.update(SMALL_SPECS)
    return out


@cache
def _seed_data(name: str) -> Any:
    return yaml.safe_load(seeds()[name])


def _paths(
    data: Any, path: tuple[Any, ...] = (), seen: set[int] | None = None
) -> list[tuple[Any, ...]]:
    """Every key path into the data (mapping keys and list indices); a shared container (an
    alias bomb made by an earlier mutation) is entered once, not once per reference."""
    seen = set() if seen is None else seen
    out = [path] if path else []
    if isinstance(data, dict | list):
        if id(data) in seen:
            return out
        seen.add(id(data))
    if isinstance(data, dict):
        for k, v in data.items():
            out.extend(_paths(v, (*path, k), seen))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out.extend(_paths(v, (*path, i), seen))
    return out


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _entries(data: Any) -> list[dict[str, Any]]:
    """Every op/block entry in the spec (top level and inside templates)."""
    found: list[dict[str, Any]] = []
    seen: set[int] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict | list):
            if id(x) in seen:
                return
            seen.add(id(x))
        if isinstance(x, dict):
            if "op" in x or "block" in x:
                found.append(x)
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(data)
    return found


def _names(data: Any) -> list[str]:
    names: list[str] = []
    if isinstance(data, dict):
        for key in ("nodes", "inputs", "params", "blocks"):
            if isinstance(data.get(key), dict):
                names.extend(str(k) for k in data[key])
        for body in (
            (data.get("blocks") or {}).values() if isinstance(data.get("blocks"), dict) else []
        ):
            if isinstance(body, dict) and isinstance(body.get("nodes"), dict):
                names.extend(str(k) for k in body["nodes"])
    return names or ["x"]


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.sampled_from(BIG_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.text(
        alphabet=st.sampled_from([c for c in ODD_CHARS if len(c) == 1] + list("ab.${}")), max_size=6
    ),
    st.sampled_from(EXPRESSIONS),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _shared(depth: int, width: int) -> Any:
    """A structure whose levels are shared objects: it serializes as a chain of anchors and
    aliases that expands to width**depth values (an alias bomb when large)."""
    level: Any = ["x"] * width
    for _ in range(depth):
        level = [level] * width
    return level


@st.composite
def data_mutation(draw: st.DrawFn) -> str:
    """A seed parsed to data, changed 1-3 times, dumped back to YAML."""
    name = draw(st.sampled_from(sorted(seeds())))
    data = copy.deepcopy(_seed_data(name))
    for _ in range(draw(st.integers(1, 3))):
        entries, names = _entries(data), _names(data)
        paths = _paths(data)
        action = draw(
            st.sampled_from(
                [
                    "delete",
                    "replace",
                    "rename",
                    "rewire",
                    "op",
                    "block",
                    "repeat",
                    "size",
                    "bomb",
                    "add_key",
                    "root",
                ]
            )
        )
        if action in ("delete", "replace", "rename", "size", "bomb") and paths:
            path = draw(st.sampled_from(paths))
            parent, key = _get(data, path[:-1]), path[-1]
            if action == "delete":
                del parent[key]
            elif action == "replace":
                parent[key] = draw(values)
            elif action == "rename" and isinstance(parent, dict):
                parent[
                    draw(
                        st.sampled_from([*names, "in", "op", "repeat", "when"])
                        | st.text(max_size=8)
                    )
                ] = parent.pop(key)
            elif (
                action == "size"
                and isinstance(parent[key], int | float)
                and not isinstance(parent[key], bool)
            ):
                parent[key] = parent[key] * draw(
                    st.sampled_from([0, -1, 1000, 10**6, 2**31, 10**20])
                )
            elif action == "bomb":
                parent[key] = _shared(draw(st.integers(1, 12)), draw(st.integers(2, 12)))
        elif action in ("rewire", "op", "block", "repeat") and entries:
            entry = draw(st.sampled_from(entries))
            if action == "rewire":
                ref = st.sampled_from([*names, "nope", "", "a.b", "x.0.y"])
                entry["in"] = draw(ref | st.lists(ref, max_size=4))
            elif action == "op":
                entry.pop("block", None)
                entry["op"] = draw(
                    st.sampled_from([*op_names(), "conv2dd", "os.system", "__import__", ""])
                )
            elif action == "block":
                entry.pop("op", None)
                entry["block"] = draw(st.sampled_from([*block_names(), "dense_blok", "os.path"]))
            else:
                entry["repeat"] = draw(
                    st.sampled_from([0, -1, 1, 3, 10**4, 10**5, 2**31, "$x", 1.5, True])
                )
        elif action == "add_key" and isinstance(data, dict):
            target = draw(st.sampled_from([data, *entries]))
            target[
                draw(
                    st.text(max_size=8)
                    | st.sampled_from(["in", "when", "repeat", "outputs", "blocks"])
                )
            ] = draw(values)
        elif action == "root":
            data = draw(st.sampled_from([None, [], "spec", 3, {}, [data]]))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=draw(st.booleans()), width=10**6)


@st.composite
def text_mutation(draw: st.DrawFn) -> str:
    """A seed's text with 1-4 character-level edits."""
    text = seeds()[draw(st.sampled_from(sorted(seeds())))]
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        action = draw(
            st.sampled_from(
                [
                    "insert",
                    "insert",
                    "delete",
                    "replace",
                    "truncate",
                    "dup_line",
                    "drop_line",
                    "indent",
                ]
            )
        )
        piece = draw(st.sampled_from(SNIPPETS) | st.text(max_size=6))
        end = min(len(text), pos + draw(st.integers(1, 40)))
        if action == "insert":
            text = text[:pos] + piece + text[pos:]
        elif action == "delete":
            text = text[:pos] + text[end:]
        elif action == "replace":
            text = text[:pos] + piece + text[end:]
        elif action == "truncate":
            text = text[:pos]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            if action == "dup_line":
                lines.insert(i, lines[i])
            elif action == "drop_line":
                del lines[i]
            else:
                lines[i] = draw(st.sampled_from([" ", "  ", "\t", "    "])) + lines[i]
            text = "\n".join(lines)
    return text


@st.composite
def structure_bomb(draw: st.DrawFn) -> str:
    """Whole documents built to exhaust a parser: alias bombs, recursive aliases, deep nesting,
    long keys, many documents."""
    kind = draw(
        st.sampled_from(
            ["alias", "recursive", "flow_depth", "block_depth", "merge_chain", "docs", "wide"]
        )
    )
    n = draw(st.integers(1, 4000))
    header = "name: bomb\ninputs: {x: [3, 8, 8]}\n"
    if kind == "alias":
        width = draw(st.integers(2, 12))
        lines = [f"  l0: &l0 [{', '.join(['1'] * width)}]"]
        for k in range(1, min(n, 40)):
            lines.append(f"  l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * width)}]")
        return header + "params:\n" + "\n".join(lines) + "\nnodes: {a: {op: relu, in: x}}\n"
    if kind == "recursive":
        return header + "params: {p: &r [1, *r]}\nnodes: {a: {op: relu, in: x}}\n"
    if kind == "flow_depth":
        return header + "nodes: {a: {op: relu, in: x, extra: " + "[" * n + "]" * n + "}}\n"
    if kind == "block_depth":
        return (
            header
            + "nodes:\n"
            + "".join("  " * (k + 1) + f"k{k}:\n" for k in range(min(n, 400)))
            + "\n"
        )
    if kind == "merge_chain":
        lines = ["  m0: &m0 {a: 1}"] + [
            f"  m{k}: &m{k} {{<<: *m{k - 1}, b{k}: {k}}}" for k in range(1, min(n, 300))
        ]
        return header + "params:\n" + "\n".join(lines) + "\nnodes: {a: {op: relu, in: x}}\n"
    if kind == "docs":
        return (header + "nodes: {a: {op: relu, in: x}}\n---\n") * min(n, 50)
    return (
        header
        + "nodes:\n"
        + "".join(f"  n{k}: {{op: relu}}\n" for k in range(min(n, 3000))).replace(
            "  n0: {op: relu}", "  n0: {op: relu, in: x}"
        )
    )


def fuzz_cases() -> st.SearchStrategy[str]:
    return st.one_of(data_mutation(), text_mutation(), structure_bomb())


def same_graph(a: archgraph.Graph, b: archgraph.Graph) -> bool:
    """Same ids, ops, args, inputs, types and outputs (locations aside)."""

    def nodes(g: archgraph.Graph) -> list[tuple[Any, ...]]:
        return [(n.id, n.op, n.inputs, n.args, n.type) for n in g.nodes()]

    return (a.name, a.description, a.outputs, nodes(a)) == (
        b.name,
        b.description,
        b.outputs,
        nodes(b),
    )


def check_case(text: str, limits: Limits = Limits()) -> str:
    """'ok' or 'error' for one spec text; raises AssertionError on anything that is a bug."""
    try:
        graph = load_spec_text(text, FILE, limits=limits)
    except RuleCrash as e:
        raise AssertionError(
            f"an op or block rule crashed instead of reporting the problem:\n{e}"
        ) from e
    except SpecError as e:
        message = str(e)
        assert e.loc is not None and e.loc.file == FILE, f"error not located in the spec: {message}"
        assert e.loc.line is not None or "too large" in e.message, (
            f"error without a line: {message}"
        )
        return "error"
    emitted = graph_to_yaml(graph)
    again = load_spec_text(emitted, "emitted.yaml", limits=limits.raised(max_bytes=2**30))
    assert same_graph(graph, again), "the graph changed through graph_to_yaml and back"
    return "ok"
