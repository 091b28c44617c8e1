"""The YAML front end: a thin interpreter that turns a spec into Builder calls.

Spec layout::

    name: resnet18                    # required
    description: one line for `archgraph zoo`
    params: {num_classes: 1000}       # spec parameters with defaults, overridable at load time
    inputs: {x: [3, 224, 224]}        # per-sample shapes (or {shape: [...], dtype: int64})
    blocks:                           # templates, callable like built-in blocks
      name: {params: {p: default or null}, inputs: [input], nodes: {...}, output: node}
    nodes:                            # in order; each entry is an op or a block call
      conv1: {op: conv2d, in: x, out_channels: 64, kernel_size: 7}
      layer1: {block: basic, repeat: 2, planes: 64, stride: "${1 if i else 2}"}
    outputs: [fc]                     # default: the last node

Entry keys: `op` or `block`; `in` (a name or a list; default: the previous entry, or the scope's
first input); `repeat` (blocks; the index is `i`); `when` (false turns the entry into a
pass-through of its first input); every other key is an argument. Names may be used before they
are defined (entries are ordered by their wiring), so a cycle is reported, not silently broken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

from archgraph.blocks.registry import BlockDef, block_names, get_block
from archgraph.builder import Builder, Value
from archgraph.errors import ArchgraphError, Loc, SpecError, did_you_mean
from archgraph.ir.graph import Graph
from archgraph.ops.registry import REQUIRED
from archgraph.spec.expr import evaluate, is_expression
from archgraph.spec.yaml_source import LDict, Limits, LList

TOP_KEYS = ("archgraph", "name", "description", "params", "inputs", "blocks", "nodes", "outputs")
ENTRY_KEYS = ("op", "block", "in", "repeat", "when")
TEMPLATE_KEYS = ("params", "inputs", "nodes", "output", "description")


def _expect(value: Any, kind: type | tuple[type, ...], what: str, loc: Loc, example: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SpecError(
            f"{what} has the wrong type",
            loc=loc,
            expected=example,
            found=f"{value!r} ({type(value).__name__})",
        )
    return value


def resolve(value: Any, env: Mapping[str, Any], loc: Loc) -> Any:
    """Evaluate `$` expressions inside a value (recursively through lists and mappings)."""
    try:
        if is_expression(value):
            return evaluate(value, env)
    except ArchgraphError as e:
        raise e.located(loc) from None
    if isinstance(value, LList):
        return [resolve(v, env, value.loc_of(i)) for i, v in enumerate(value)]
    if isinstance(value, list):
        return [resolve(v, env, loc) for v in value]
    if isinstance(value, LDict):
        return {k: resolve(v, env, value.loc_of(k)) for k, v in value.items()}
    return value


class _Interpreter:
    def __init__(self, spec: LDict, limits: Limits) -> None:
        self.spec = spec
        self.limits = limits
        self.templates: dict[str, BlockDef] = {}

    # ---- scopes ---------------------------------------------------------------------------
    def run_scope(self, b: Builder, nodes: Any, where: Loc, env: dict[str, Any], names: dict[str, Value]) -> Value | None:
        """Build the entries of one `nodes:` mapping; returns the last entry's value."""
        nodes = _expect(nodes, LDict, "`nodes`", where, "a mapping of node name -> entry")
        entries: dict[str, LDict] = {}
        refs: dict[str, list[tuple[str, Loc]]] = {}
        previous: str | None = None
        first_input = next(iter(names), None)
        for key, entry in nodes.items():
            name = str(key)
            loc = nodes.key_locs[key]
            entry = _expect(entry, LDict, f"node '{b.qualify(name)}'", loc, "a mapping with `op:` or `block:`")
            if name in names:
                raise SpecError(f"node name '{name}' is already an input of this scope", loc=loc, node=b.qualify(name))
            entries[name] = entry
            refs[name] = self._inputs_of(entry, env, previous or first_input, b.qualify(name))
            previous = name
        order = self._order(entries, refs, names, b, nodes)
        values = dict(names)
        for name in order:
            values[name] = self.run_entry(b, name, entries[name], refs[name], env, values, nodes.key_locs[name])
        return values[previous] if previous is not None else None

    def _inputs_of(self, entry: LDict, env: dict[str, Any], default: str | None, node_id: str) -> list[tuple[str, Loc]]:
        if "in" not in entry:
            if default is None:
                raise SpecError("the first node of a scope needs `in:`", loc=entry.loc, node=node_id)
            return [(default, entry.loc)]
        raw = entry["in"]
        loc = entry.loc_of("in")
        value = resolve(raw, env, loc)
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            item_loc = raw.loc_of(i) if isinstance(raw, LList) else loc
            _expect(item, str, "`in`", item_loc, "a node name or a list of node names")
            out.append((item, item_loc))
        return out

    def _local_dep(self, ref: str, entries: Mapping[str, Any]) -> str | None:
        """The entry of this scope that a reference depends on ('layer1.0.relu' -> 'layer1')."""
        if ref in entries:
            return ref
        parts = ref.split(".")
        for n in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:n])
            if head in entries:
                return head
        return None

    def _order(self, entries: dict[str, LDict], refs: dict[str, list[tuple[str, Loc]]],
               names: dict[str, Value], b: Builder, nodes: LDict) -> list[str]:
        deps = nx.DiGraph()
        deps.add_nodes_from(entries)
        for name, inputs in refs.items():
            for ref, loc in inputs:
                dep = self._local_dep(ref, entries)
                if dep is not None:
                    deps.add_edge(dep, name)
                elif ref not in names and b.qualify(ref) not in b.graph:
                    known = [*names, *entries]
                    raise SpecError(
                        f"unknown input name '{ref}'",
                        loc=loc,
                        node=b.qualify(name),
                        expected="an input or a node of this scope: " + ", ".join(known[:8]) + (" ..." if len(known) > 8 else ""),
                        found=f"'{ref}'",
                        hint=did_you_mean(ref, known),
                    )
        try:
            cycle = nx.find_cycle(deps)
        except nx.NetworkXNoCycle:
            position = {n: i for i, n in enumerate(entries)}
            return list(nx.lexicographical_topological_sort(deps, key=position.__getitem__))
        path = [src for src, _ in cycle]
        first = min(path, key=lambda n: nodes.key_locs[n].line or 0)
        raise SpecError(
            "the wiring has a cycle: " + " -> ".join([*path, path[0]]),
            loc=nodes.key_locs[first],
            node=b.qualify(first),
            expected="a DAG: every node's inputs defined without depending on the node itself",
            found="a cycle",
            hint="check the `in:` of these nodes (an entry without `in:` takes the previous entry)",
        )

    # ---- entries --------------------------------------------------------------------------
    def run_entry(self, b: Builder, name: str, entry: LDict, inputs: list[tuple[str, Loc]], env: dict[str, Any],
                  values: dict[str, Value], loc: Loc) -> Value:
        node_id = b.qualify(name)
        ins = [self._lookup(b, ref, values) for ref, _ in inputs]
        if "when" in entry and not resolve(entry["when"], env, entry.loc_of("when")):
            return ins[0]
        has_op, has_block = "op" in entry, "block" in entry
        if has_op == has_block:
            raise SpecError(
                "a node needs exactly one of `op:` and `block:`",
                loc=loc,
                node=node_id,
                expected="op: <op name> or block: <block name>",
                found="both" if has_op else "neither",
            )
        try:
            if has_op:
                if "repeat" in entry:
                    raise SpecError("`repeat` applies to blocks", hint="wrap the op in a block template", loc=entry.loc_of("repeat"))
                op = _expect(entry["op"], str, "`op`", entry.loc_of("op"), "an op name")
                return b.node(op, *ins, name=name, loc=loc, **self._args(entry, env))
            return self._call_block(b, name, entry, ins, env, loc)
        except ArchgraphError as e:
            if e.node == node_id and e.field in entry:
                e.loc = entry.loc_of(e.field)  # point at the key at fault, not just the node
            raise

    def _args(self, entry: LDict, env: dict[str, Any]) -> dict[str, Any]:
        return {str(k): resolve(v, env, entry.loc_of(k)) for k, v in entry.items() if k not in ENTRY_KEYS}

    def _lookup(self, b: Builder, ref: str, values: dict[str, Value]) -> Value:
        return values[ref] if ref in values else b.value(b.qualify(ref))

    def _call_block(self, b: Builder, name: str, entry: LDict, ins: list[Value], env: dict[str, Any],
                    loc: Loc) -> Value:
        block_name = _expect(entry["block"], str, "`block`", entry.loc_of("block"), "a block name")
        try:
            bdef = self.templates.get(block_name) or get_block(block_name)
        except SpecError as e:
            e.hint = did_you_mean(block_name, [*self.templates, *block_names()])
            e.loc = entry.loc_of("block")
            raise
        if "repeat" not in entry:
            return b.block(bdef, *ins, name=name, loc=loc, **self._args(entry, env))
        times = resolve(entry["repeat"], env, entry.loc_of("repeat"))
        _expect(times, int, "`repeat`", entry.loc_of("repeat"), "a positive integer")
        if not 1 <= times <= self.limits.max_repeat:
            raise SpecError(
                "repeat count out of range", loc=entry.loc_of("repeat"), expected=f"1..{self.limits.max_repeat}", found=str(times)
            )
        x = ins
        with b.scope(name):
            for i in range(times):
                x = [b.block(bdef, *x, name=str(i), loc=loc, **self._args(entry, {**env, "i": i}))]
        return x[0]

    # ---- templates ------------------------------------------------------------------------
    def define_template(self, name: str, body: Any, loc: Loc, spec_env: dict[str, Any]) -> BlockDef:
        body = _expect(body, LDict, f"block template '{name}'", loc, "a mapping with `nodes:`")
        for key in body:
            if key not in TEMPLATE_KEYS:
                raise SpecError(f"unknown key '{key}' in block template '{name}'", loc=body.key_locs[key],
                                hint=did_you_mean(str(key), TEMPLATE_KEYS))
        params_raw = body.get("params", LDict())
        _expect(params_raw, dict, f"`params` of block '{name}'", body.loc_of("params"), "a mapping of name -> default (null: required)")
        params = {str(k): (REQUIRED if v is None else v) for k, v in params_raw.items()}
        input_names = body.get("inputs", ["input"])
        _expect(input_names, list, f"`inputs` of block '{name}'", body.loc_of("inputs"), "a list of names")
        if "nodes" not in body:
            raise SpecError(f"block template '{name}' has no `nodes:`", loc=loc)
        output = body.get("output")

        def run(bb: Builder, *inputs: Value, **args: Any) -> Value:
            if len(inputs) != len(input_names):
                raise SpecError(
                    f"block '{name}' got the wrong number of inputs",
                    expected=f"{len(input_names)} ({', '.join(map(str, input_names))})",
                    found=str(len(inputs)),
                )
            env = {**spec_env, **{k: v for k, v in params.items() if v is not REQUIRED}, **args}
            last = self.run_scope(bb, body["nodes"], body.loc_of("nodes"), env, dict(zip(map(str, input_names), inputs, strict=True)))
            if output is None:
                assert last is not None
                return last
            ref = str(output)
            if bb.qualify(ref) not in bb.graph:
                raise SpecError(f"block output '{ref}' is not a node of block '{name}'", loc=body.loc_of("output"))
            return bb.value(bb.qualify(ref))

        doc = str(body.get("description", f"template defined in {loc.file}"))
        return BlockDef(name, run, doc, params, len(input_names))

    # ---- the whole spec -------------------------------------------------------------------
    def build(self, batch: int, overrides: Mapping[str, Any]) -> Graph:
        spec = self.spec
        for key in spec:
            if key not in TOP_KEYS:
                raise SpecError(f"unknown top-level key '{key}'", loc=spec.key_locs[key],
                                expected=", ".join(TOP_KEYS), found=str(key), hint=did_you_mean(str(key), TOP_KEYS))
        for key in ("name", "nodes"):
            if key not in spec:
                raise SpecError(f"the spec has no `{key}:`", loc=spec.loc, expected=f"a top-level `{key}:` key")
        name = _expect(spec["name"], str, "`name`", spec.loc_of("name"), "a string")
        env = self._params(spec.get("params", LDict()), spec.loc_of("params"), overrides)
        b = Builder(name, str(spec.get("description", "")), batch=batch)
        for tname, body in _expect(spec.get("blocks", LDict()), dict, "`blocks`", spec.loc_of("blocks"), "a mapping").items():
            self.templates[str(tname)] = self.define_template(str(tname), body, spec["blocks"].key_locs[tname], env)
        inputs = self._inputs(b, spec.get("inputs"), spec.loc_of("inputs") if "inputs" in spec else spec.loc, env)
        last = self.run_scope(b, spec["nodes"], spec.loc_of("nodes"), env, inputs)
        outs = spec.get("outputs")
        if outs is None:
            if last is None:
                raise SpecError("the spec has no nodes", loc=spec.loc_of("nodes"))
            b.output(last)
        else:
            outs_list = outs if isinstance(outs, list) else [outs]
            for i, ref in enumerate(outs_list):
                oloc = outs.loc_of(i) if isinstance(outs, LList) else spec.loc_of("outputs")
                ref = _expect(ref, str, "an output", oloc, "a node name")
                if ref not in b.graph:
                    raise SpecError(f"unknown output '{ref}'", loc=oloc, hint=did_you_mean(ref, list(b.graph.nx.nodes)))
                b.output(b.value(ref))
        if len(b.graph) > self.limits.max_graph_nodes:
            raise SpecError("the network has too many nodes", loc=spec.loc,
                            expected=f"at most {self.limits.max_graph_nodes}", found=str(len(b.graph)))
        return b.build()

    def _params(self, raw: Any, loc: Loc, overrides: Mapping[str, Any]) -> dict[str, Any]:
        raw = _expect(raw, dict, "`params`", loc, "a mapping of name -> default value")
        for key in overrides:
            if key not in raw:
                raise SpecError(f"unknown spec parameter '{key}'", loc=loc, expected=", ".join(map(str, raw)) or "none",
                                found=key, hint=did_you_mean(key, map(str, raw)))
        env: dict[str, Any] = {}
        for key, value in raw.items():
            env[str(key)] = overrides[key] if key in overrides else resolve(value, env, raw.loc_of(key))
        return env

    def _inputs(self, b: Builder, raw: Any, loc: Loc, env: dict[str, Any]) -> dict[str, Value]:
        raw = _expect(raw, LDict, "`inputs`", loc, "a mapping of input name -> per-sample shape, e.g. {x: [3, 224, 224]}")
        values = {}
        for key, value in raw.items():
            vloc = raw.loc_of(key)
            value = resolve(value, env, vloc)
            dtype = "float32"
            if isinstance(value, dict):
                dtype = value.get("dtype", "float32")
                value = value.get("shape")
            shape = _expect(value, list, f"shape of input '{key}'", vloc, "a list of positive sizes, e.g. [3, 224, 224]")
            numel = b.batch
            for d in shape:
                _expect(d, int, f"a size in input '{key}'", vloc, "a positive integer")
                numel *= max(d, 1)
            if numel > self.limits.max_tensor_elements:
                raise SpecError(f"input '{key}' is too large", loc=vloc,
                                expected=f"at most {self.limits.max_tensor_elements} elements", found=str(numel))
            values[str(key)] = b.input(str(key), shape, dtype, loc=vloc)
        return values


def build_graph(spec: Any, file: str, *, batch: int = 1, params: Mapping[str, Any] | None = None,
                limits: Limits = Limits()) -> Graph:
    """Interpret a parsed spec (from parse_yaml) into a validated Graph."""
    if not isinstance(spec, LDict):
        raise SpecError(
            "the spec must be a mapping at its top level",
            loc=getattr(spec, "loc", Loc(file, 1, 1)),
            expected="name:, inputs:, nodes: ...",
            found=type(spec).__name__,
        )
    return _Interpreter(spec, limits).build(batch, params or {})
