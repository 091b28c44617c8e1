"""Safe YAML loading that remembers where every key and item was written.

PyYAML composes the document into nodes (with marks), then we build plain containers ourselves:
only the safe scalar tags are accepted, aliases are expanded under a budget (no alias bombs),
nesting is bounded, duplicate keys are errors. Nothing in a spec can construct a Python object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from archgraph.errors import Loc, SpecError


@dataclass(frozen=True)
class Limits:
    """Bounds on what a spec may ask for; raise them by passing a Limits to archgraph.load."""

    max_bytes: int = 4 * 1024 * 1024
    max_depth: int = 64
    max_yaml_nodes: int = 200_000  # after alias expansion
    max_graph_nodes: int = 100_000
    max_repeat: int = 10_000
    max_tensor_elements: int = 2**34


class LDict(dict):
    """A mapping from a spec, with the location of itself and of each key."""

    loc: Loc
    key_locs: dict[Any, Loc]
    value_locs: dict[Any, Loc]

    def loc_of(self, key: Any) -> Loc:
        return self.value_locs.get(key) or self.key_locs.get(key) or self.loc


class LList(list):
    """A sequence from a spec, with the location of itself and of each item."""

    loc: Loc
    item_locs: list[Loc]

    def loc_of(self, index: int) -> Loc:
        return self.item_locs[index] if 0 <= index < len(self.item_locs) else self.loc


_SCALARS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:str",
}


class _Reader:
    def __init__(self, file: str, limits: Limits) -> None:
        self.file = file
        self.limits = limits
        self.count = 0
        self.scalars = SafeConstructor()

    def loc(self, node: yaml.Node) -> Loc:
        return Loc(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def convert(self, node: yaml.Node, depth: int) -> Any:
        self.count += 1
        if self.count > self.limits.max_yaml_nodes:
            raise SpecError(
                "the spec expands to too many YAML values (an alias bomb?)",
                loc=self.loc(node),
                expected=f"at most {self.limits.max_yaml_nodes} values after expanding aliases",
                found="more",
                hint="raise Limits.max_yaml_nodes if the spec is genuinely this large",
            )
        if depth > self.limits.max_depth:
            raise SpecError(
                "the spec is nested too deeply",
                loc=self.loc(node),
                expected=f"at most {self.limits.max_depth} levels",
                found="deeper",
            )
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _SCALARS:
                raise SpecError(
                    f"YAML tag '{node.tag}' is not allowed in a spec",
                    loc=self.loc(node),
                    expected="plain numbers, strings, booleans and null",
                    found=node.tag,
                    hint="specs are data; custom ops come from Python plugins (archgraph.register_op)",
                )
            try:
                return self.scalars.construct_object(node, deep=True)
            except (ConstructorError, ValueError) as e:
                raise SpecError(f"bad YAML value: {e}", loc=self.loc(node)) from None
        if isinstance(node, yaml.SequenceNode):
            self._plain_tag(node, "tag:yaml.org,2002:seq")
            out = LList()
            out.loc = self.loc(node)
            out.item_locs = []
            for item in node.value:
                out.append(self.convert(item, depth + 1))
                out.item_locs.append(self.loc(item))
            return out
        if isinstance(node, yaml.MappingNode):
            self._plain_tag(node, "tag:yaml.org,2002:map")
            try:
                self.scalars.flatten_mapping(node)  # YAML merge keys ('<<')
            except ConstructorError as e:
                raise SpecError(f"bad YAML merge: {e.problem}", loc=self.loc(node)) from None
            out = LDict()
            out.loc = self.loc(node)
            out.key_locs, out.value_locs = {}, {}
            for knode, vnode in node.value:
                key = self.convert(knode, depth + 1)
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise SpecError("mapping keys must be plain scalars", loc=self.loc(knode), found=repr(key))
                if key in out:
                    raise SpecError(
                        f"duplicate key '{key}'",
                        loc=self.loc(knode),
                        hint=f"first written at {out.key_locs[key]}",
                    )
                out[key] = self.convert(vnode, depth + 1)
                out.key_locs[key] = self.loc(knode)
                out.value_locs[key] = self.loc(vnode)
            return out
        raise SpecError("unsupported YAML node", loc=self.loc(node))

    def _plain_tag(self, node: yaml.Node, tag: str) -> None:
        if node.tag != tag:
            raise SpecError(
                f"YAML tag '{node.tag}' is not allowed in a spec", loc=self.loc(node), expected="no tag", found=node.tag
            )


def parse_yaml(text: str, file: str, limits: Limits = Limits()) -> Any:
    """Parse one YAML document into LDict/LList/scalars, raising located SpecErrors."""
    if len(text.encode("utf-8", errors="surrogatepass")) > limits.max_bytes:
        raise SpecError(
            "the spec file is too large",
            loc=Loc(file),
            expected=f"at most {limits.max_bytes} bytes",
            found=f"{len(text)} characters",
        )
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file)
        raise SpecError(f"not valid YAML: {e.problem or e.context}", loc=loc) from None
    except yaml.YAMLError as e:
        raise SpecError(f"not valid YAML: {e}", loc=Loc(file)) from None
    except RecursionError:
        raise SpecError("the spec is nested too deeply for the YAML parser", loc=Loc(file)) from None
    if not documents or documents[0] is None:
        raise SpecError("the spec is empty", loc=Loc(file, 1, 1), expected="a mapping with `nodes:`", found="nothing")
    if len(documents) > 1:
        raise SpecError("the spec holds more than one YAML document", loc=Loc(file), expected="one document")
    return _Reader(file, limits).convert(documents[0], 0)
