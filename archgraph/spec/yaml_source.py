"""Safe YAML loading that remembers where every key and item was written.

PyYAML parses and composes the document into nodes (with marks); we build plain containers
ourselves. Scalars follow the YAML 1.2 core schema (`1e-5` is a number, `yes`/`on` are strings,
no octal `010` or sexagesimal `1:30`), only the core tags are accepted, so nothing in a spec
constructs a Python object. Nesting is bounded while composing (before Python's recursion limit
could be reached), aliases and merges are expanded under a budget (no alias bombs, no recursive
aliases), duplicate keys are errors, and strings may not hide control or invisible characters.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from archgraph.errors import Loc, SpecError
from archgraph.spec.limits import Limits, limit_hint
from archgraph.spec.names import describe_char, hidden_char

__all__ = ["LDict", "LList", "Limits", "SpecResolver", "parse_yaml"]

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"
MERGE = "tag:yaml.org,2002:merge"

_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)"
)
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULL = {"", "~", "null", "Null", "NULL"}


class SpecResolver(BaseResolver):
    """Plain scalars resolved by the YAML 1.2 core schema (also used when writing specs)."""


SpecResolver.add_implicit_resolver(BOOL, re.compile("|".join(_BOOL)), list("tTfF"))
SpecResolver.add_implicit_resolver(INT, re.compile(f"(?:{_INT.pattern})$"), list("-+0123456789"))
SpecResolver.add_implicit_resolver(
    FLOAT, re.compile(f"(?:{_FLOAT.pattern})$"), list("-+.0123456789")
)
SpecResolver.add_implicit_resolver(NULL, re.compile(r"(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
SpecResolver.add_implicit_resolver(MERGE, re.compile(r"<<$"), ["<"])


class LDict(dict):
    """A mapping from a spec, with the location of itself and of each key."""

    loc: Loc
    key_locs: dict[Any, Loc]
    value_locs: dict[Any, Loc]

    def __init__(self, *args: Any, loc: Loc | None = None) -> None:
        super().__init__(*args)
        self.loc = loc or Loc("<spec>")
        self.key_locs, self.value_locs = {}, {}

    def loc_of(self, key: Any) -> Loc:
        return self.value_locs.get(key) or self.key_locs.get(key) or self.loc


class LList(list):
    """A sequence from a spec, with the location of itself and of each item."""

    loc: Loc
    item_locs: list[Loc]

    def __init__(self, *args: Any, loc: Loc | None = None) -> None:
        super().__init__(*args)
        self.loc = loc or Loc("<spec>")
        self.item_locs = []

    def loc_of(self, index: int) -> Loc:
        return self.item_locs[index] if 0 <= index < len(self.item_locs) else self.loc


def _float(text: str) -> float:
    special = {".inf": "inf", "+.inf": "inf", "-.inf": "-inf", ".nan": "nan"}
    return float(special.get(text.lower(), text))


def _mark_loc(file: str, mark: Any) -> Loc:
    return Loc(file, mark.line + 1, mark.column + 1) if mark is not None else Loc(file)


class _Loader(Reader, Scanner, Parser, Composer, SpecResolver):
    """PyYAML's pure-Python reader, scanner, parser and composer, with the core-schema resolver
    and a depth bound checked as each node is composed."""

    def __init__(self, text: str, file: str, limits: Limits) -> None:
        self.file = file
        self.limits = limits
        self.depth = 0
        self.composed = 0
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SpecResolver.__init__(self)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            return super().compose_node(parent, index)
        self.composed += 1
        if self.composed > self.limits.max_yaml_nodes:  # stop a huge document early, while parsing
            raise _too_many(
                _mark_loc(self.file, self.peek_event().start_mark), self.limits.max_yaml_nodes
            )
        self.depth += 1
        try:
            if self.depth > self.limits.max_depth:
                raise _too_deep(
                    _mark_loc(self.file, self.peek_event().start_mark), self.limits.max_depth
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _too_many(loc: Loc, limit: int) -> SpecError:
    return SpecError(
        "the spec expands to too many YAML values (an alias bomb?)",
        loc=loc,
        expected=f"at most {limit} values after expanding aliases",
        found="more",
        hint=limit_hint("max_yaml_nodes"),
    )


def _recursive_alias(loc: Loc) -> SpecError:
    return SpecError(
        "an alias refers to a collection that contains it (a recursive alias)",
        loc=loc,
        expected="aliases to finished mappings or lists",
        found="a cycle",
    )


def _check_expansion(root: yaml.Node, file: str, limit: int) -> None:
    """Reject alias bombs and recursive aliases before expanding anything: the expanded size of
    every composed node is computed once (aliases share nodes), so this takes time linear in
    the text however large the expansion would be."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if isinstance(node, yaml.ScalarNode):
            size[key] = 1
            continue
        children = (
            [c for pair in node.value for c in pair]
            if isinstance(node, yaml.MappingNode)
            else node.value
        )
        if done:
            on_path.discard(key)
            size[key] = min(limit + 1, 1 + sum(size[id(c)] for c in children))
            if size[key] > limit:
                raise _too_many(_mark_loc(file, node.start_mark), limit)
            continue
        if key in size:
            continue
        if key in on_path:
            raise _recursive_alias(_mark_loc(file, node.start_mark))
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in on_path:
                raise _recursive_alias(_mark_loc(file, child.start_mark))
            if id(child) not in size:
                stack.append((child, False))


def _too_deep(loc: Loc, limit: int) -> SpecError:
    return SpecError(
        "the spec is nested too deeply",
        loc=loc,
        expected=f"at most {limit} levels of nesting",
        found="deeper",
        hint=limit_hint("max_depth"),
    )


class _Reader:
    """Composed YAML nodes -> LDict / LList / scalars, counting every value after expansion."""

    def __init__(self, file: str, limits: Limits) -> None:
        self.file = file
        self.limits = limits
        self.count = 0
        self.active: set[int] = set()  # nodes being converted: an alias to one is recursive

    def loc(self, node: yaml.Node) -> Loc:
        return _mark_loc(self.file, node.start_mark)

    def convert(self, node: yaml.Node, depth: int) -> Any:
        self.count += 1
        if (
            self.count > self.limits.max_yaml_nodes
        ):  # merges copy keys: _check_expansion counts them once
            raise _too_many(self.loc(node), self.limits.max_yaml_nodes)
        if depth > self.limits.max_depth:
            raise _too_deep(self.loc(node), self.limits.max_depth)
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if id(node) in self.active:
            raise _recursive_alias(self.loc(node))
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return self.sequence(node, depth)
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, depth)
        finally:
            self.active.discard(id(node))
        raise SpecError(
            "unsupported YAML node", loc=self.loc(node)
        )  # pragma: no cover - PyYAML makes only three kinds

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag, text = node.tag, node.value
        value: Any
        if tag == STR:
            bad = hidden_char(text)
            if bad is not None:
                raise SpecError(
                    "a string holds a control or invisible character",
                    loc=self.loc(node),
                    expected="visible text (tabs and newlines allowed)",
                    found=f"{describe_char(bad[1])} at character {bad[0] + 1} of {text[:40]!r}",
                    hint="such characters can make a spec read differently from what it does; remove it",
                )
            return text
        try:
            if tag == INT and _INT.fullmatch(text):
                base = {"0o": 8, "0x": 16}.get(text[:2], 10)
                value = int(text[2:] if base != 10 else text, base)
            elif tag == FLOAT and (_FLOAT.fullmatch(text) or _INT.fullmatch(text)):
                value = _float(text)
            elif tag == BOOL and text in _BOOL:
                value = _BOOL[text]
            elif tag == NULL and text in _NULL:
                value = None
            elif tag in (INT, FLOAT, BOOL, NULL):
                raise SpecError(
                    f"'{text[:40]}' is not a valid {tag.rsplit(':', 1)[1]}", loc=self.loc(node)
                )
            else:
                raise SpecError(
                    f"YAML tag '{tag}' is not allowed in a spec",
                    loc=self.loc(node),
                    expected="plain numbers, strings, booleans and null",
                    found=tag,
                    hint="specs are data; custom ops come from Python plugins (archgraph.register_op, --plugin)",
                )
        except ValueError:  # an integer literal longer than Python converts
            raise SpecError(
                "number too long",
                loc=self.loc(node),
                expected="at most 4300 digits",
                found=f"{len(text)} characters",
            ) from None
        return value

    def sequence(self, node: yaml.SequenceNode, depth: int) -> LList:
        self._plain_tag(node, SEQ)
        out = LList(loc=self.loc(node))
        for item in node.value:
            out.append(self.convert(item, depth + 1))
            out.item_locs.append(self.loc(item))
        return out

    def mapping(self, node: yaml.MappingNode, depth: int) -> LDict:
        self._plain_tag(node, MAP)
        out = LDict(loc=self.loc(node))
        explicit: set[Any] = set()
        for knode, vnode in node.value:
            if isinstance(knode, yaml.ScalarNode) and knode.tag == MERGE:
                self._merge(out, knode, self.convert(vnode, depth + 1))
                continue
            key = self.key(knode, depth)
            if key in explicit:
                raise SpecError(
                    f"duplicate key '{key}'",
                    loc=self.loc(knode),
                    hint=f"first written at {out.key_locs[key]}",
                )
            explicit.add(key)
            out[key] = self.convert(vnode, depth + 1)
            out.key_locs[key] = self.loc(knode)
            out.value_locs[key] = self.loc(vnode)
        return out

    def key(self, knode: yaml.Node, depth: int) -> str:
        """Keys are names: strings, or integers written as names (`0:` is '0')."""
        key = self.convert(knode, depth + 1) if isinstance(knode, yaml.ScalarNode) else None
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        if not isinstance(key, str):
            found = type(key).__name__ if isinstance(knode, yaml.ScalarNode) else "a collection"
            raise SpecError(
                "a mapping key must be a name",
                loc=self.loc(knode),
                expected="a string or an integer",
                found=f"{knode.value!r} ({found})" if isinstance(knode, yaml.ScalarNode) else found,
                hint="quote the key if it is meant as a name, e.g. 'true':",
            )
        return key

    def _merge(self, out: LDict, knode: yaml.Node, value: Any) -> None:
        """A YAML merge key (`<<: *base` or `<<: [*a, *b]`): keys not given yet are copied
        (earlier sources win); keys written explicitly later override them."""
        sources = value if isinstance(value, LList) else [value]
        for source in sources:
            if not isinstance(source, LDict):
                raise SpecError(
                    "a merge key (<<) takes a mapping or a list of mappings",
                    loc=self.loc(knode),
                    found=type(source).__name__,
                )
            for key, item in source.items():
                if key in out:
                    continue
                out[key] = item
                out.key_locs[key] = source.key_locs.get(key, source.loc)
                out.value_locs[key] = source.loc_of(key)

    def _plain_tag(self, node: yaml.Node, tag: str) -> None:
        if node.tag != tag:
            raise SpecError(
                f"YAML tag '{node.tag}' is not allowed in a spec",
                loc=self.loc(node),
                expected="no tag",
                found=node.tag,
                hint="specs are data; custom ops come from Python plugins (archgraph.register_op, --plugin)",
            )


def _position_loc(file: str, text: str, index: int) -> Loc:
    line = text.count("\n", 0, index) + 1
    return Loc(file, line, index - (text.rfind("\n", 0, index) + 1) + 1)


def parse_yaml(text: str, file: str, limits: Limits = Limits()) -> Any:
    """Parse one YAML document into LDict/LList/scalars, raising located SpecErrors."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_bytes:
        raise SpecError(
            "the spec file is too large",
            loc=Loc(file),
            expected=f"at most {limits.max_bytes} bytes",
            found=f"{size} bytes",
            hint=limit_hint("max_bytes"),
        )
    loader = None
    try:
        loader = _Loader(text, file, limits)  # the reader checks the characters here
        root = loader.get_single_node()
    except ReaderError as e:
        raise SpecError(
            "the spec holds a character YAML does not allow",
            loc=_position_loc(file, text, e.position),
            expected="printable text",
            found=describe_char(chr(e.character))
            if isinstance(e.character, int)
            else repr(e.character),
        ) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        hint = None
        if e.context and e.context_mark is not None and e.context_mark is not mark:
            hint = f"{e.context} at {_mark_loc(file, e.context_mark)}"
        raise SpecError(
            f"not valid YAML: {e.problem or e.context}", loc=_mark_loc(file, mark), hint=hint
        ) from None
    except yaml.YAMLError as e:
        raise SpecError(f"not valid YAML: {e}", loc=Loc(file)) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise SpecError(
            "the spec is empty",
            loc=Loc(file, 1, 1),
            expected="a mapping with `nodes:`",
            found="nothing",
        )
    _check_expansion(root, file, limits.max_yaml_nodes)
    return _Reader(file, limits).convert(root, 0)
