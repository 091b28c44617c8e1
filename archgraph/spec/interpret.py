"""The YAML front end: a thin interpreter that turns a spec into Builder calls.

Spec layout::

    archgraph: 1                      # the format version (optional)
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
first input); `repeat` (blocks); `when` (false turns the entry into a pass-through of its first
input); `share` (ops: the full id of an earlier node whose parameters this one uses,
archgraph.ir.sharing); every other key is an argument. Names may be used before they are defined (entries are
ordered by their wiring), so a cycle is reported, not silently broken.

`repeat: N` calls the block N times in a chain, as `<entry>.0` ... `<entry>.<N-1>`;
`repeat: {count: N, start: S, prefix: P}` names them `<entry>.<P><S>` ... `<entry>.<P><S+N-1>`
(start 0 and prefix '' by default). In each call `i` is the number in its name.

Inside a block template, an entry named `.` takes the id of the block call itself (a one-op
template called as `features.2.0` owns `features.2.0.weight`; a repeat named `.` puts its calls
directly under the call), and expressions can read the template's first input: `in_channels` (its
dim 1, the channels of NCHW) and `in_shape` (its per-sample shape, batch left out). A template
parameter of the same name takes their place.

Names (nodes, inputs, blocks) are ASCII letters, digits, '_' and '-' in dotted segments;
parameter names are identifiers. `$name` and `${expr}` are expressions (archgraph.spec.expr);
`$$` starts a literal string beginning with '$'. Everything a spec can make is bounded by Limits.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import Any

from archgraph.blocks.registry import BlockDef, block_names, get_block
from archgraph.builder import SELF, Value
from archgraph.errors import ArchgraphError, Loc, SpecError, did_you_mean
from archgraph.ir.graph import Graph
from archgraph.ir.types import DTYPES
from archgraph.ops.registry import REQUIRED, ArgTypeError
from archgraph.spec.block_types import param_kinds
from archgraph.spec.bounded import BoundedBuilder, RuleCrash
from archgraph.spec.expr import Work, evaluate, is_expression
from archgraph.spec.limits import Limits, limit_hint
from archgraph.spec.names import name_problem, name_rule
from archgraph.spec.yaml_source import LDict, LList

FORMAT_VERSION = 1
TOP_KEYS = ("archgraph", "name", "description", "params", "inputs", "blocks", "nodes", "outputs")
ENTRY_KEYS = ("op", "block", "in", "repeat", "when", "share")
TEMPLATE_KEYS = ("params", "inputs", "nodes", "output", "description")
REPEAT_KEYS = ("count", "start", "prefix")
INPUT_KEYS = ("shape", "dtype")


def _expect(value: Any, kind: type | tuple[type, ...], what: str, loc: Loc, example: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SpecError(
            f"{what} has the wrong type",
            loc=loc,
            expected=example,
            found=f"{_short(value)} ({type(value).__name__})",
        )
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_name(
    name: str, what: str, loc: Loc, *, identifier: bool = False, node: str | None = None
) -> str:
    problem = name_problem(name, identifier=identifier)
    if problem is not None:
        raise SpecError(
            f"{what} '{name[:60]}' is not a valid name: {problem}",
            loc=loc,
            node=node,
            expected=name_rule(identifier),
            found=ascii(name[:60]),
        )
    return name


def resolve(
    value: Any,
    env: Mapping[str, Any],
    loc: Loc,
    limits: Limits = Limits(),
    work: Work | None = None,
) -> Any:
    """Evaluate `$` expressions inside a value (recursively through lists and mappings);
    `work` is the spec's expression budget (one per value if None)."""
    work = work or Work(limits)
    try:
        if is_expression(value):
            return evaluate(value, env, limits, work)
    except ArchgraphError as e:
        raise e.located(loc) from None
    if isinstance(value, LList):
        return [resolve(v, env, value.loc_of(i), limits, work) for i, v in enumerate(value)]
    if isinstance(value, list):
        return [resolve(v, env, loc, limits, work) for v in value]
    if isinstance(value, LDict):
        return {k: resolve(v, env, value.loc_of(k), limits, work) for k, v in value.items()}
    return value


class _Interpreter:
    def __init__(self, spec: LDict, limits: Limits) -> None:
        self.spec = spec
        self.limits = limits
        self.work = Work(limits)  # one expression budget for the whole spec
        self.templates: dict[str, BlockDef] = {}
        self.calls: list[str] = []  # the block templates being expanded, outermost first

    def resolve(self, value: Any, env: Mapping[str, Any], loc: Loc) -> Any:
        return resolve(value, env, loc, self.limits, self.work)

    # ---- scopes ---------------------------------------------------------------------------
    def run_scope(
        self,
        b: BoundedBuilder,
        nodes: Any,
        where: Loc,
        env: dict[str, Any],
        names: dict[str, Value],
    ) -> Value | None:
        """Build the entries of one `nodes:` mapping; returns the last entry's value."""
        nodes = _expect(nodes, LDict, "`nodes`", where, "a mapping of node name -> entry")
        entries: dict[str, LDict] = {}
        refs: dict[str, list[tuple[str, Loc]]] = {}
        previous: str | None = None
        first_input = next(iter(names), None)
        for name, entry in nodes.items():
            loc = nodes.key_locs[name]
            if name == SELF and not self.calls:
                raise SpecError(
                    "the entry name '.' stands for the block call it is in; the top level has none",
                    loc=loc,
                    expected="'.' inside a block template",
                    found="'.' at the top level",
                    hint="give the node a name",
                )
            if name != SELF:
                _check_name(name, "node name", loc, node=b.qualify(name))
            entry = _expect(
                entry, LDict, f"node '{b.qualify(name)}'", loc, "a mapping with `op:` or `block:`"
            )
            if name in names:
                raise SpecError(
                    f"node name '{name}' is already an input of this scope",
                    loc=loc,
                    node=b.qualify(name),
                )
            entries[name] = entry
            refs[name] = self._inputs_of(entry, env, previous or first_input, b.qualify(name))
            previous = name
        order = self._order(entries, refs, names, b, nodes)
        values = dict(names)
        for name in order:
            values[name] = self.run_entry(
                b, name, entries[name], refs[name], env, values, nodes.key_locs[name]
            )
        return values[previous] if previous is not None else None

    def _inputs_of(
        self, entry: LDict, env: dict[str, Any], default: str | None, node_id: str
    ) -> list[tuple[str, Loc]]:
        if "in" not in entry:
            if default is None:
                raise SpecError(
                    "the first node of a scope needs `in:`", loc=entry.loc, node=node_id
                )
            return [(default, entry.loc)]
        raw = entry["in"]
        loc = entry.loc_of("in")
        value = self.resolve(raw, env, loc)
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

    def _order(
        self,
        entries: dict[str, LDict],
        refs: dict[str, list[tuple[str, Loc]]],
        names: dict[str, Value],
        b: BoundedBuilder,
        nodes: LDict,
    ) -> list[str]:
        """Entries in the order their wiring needs, written order where it allows (Kahn's)."""
        preds: dict[str, set[str]] = {name: set() for name in entries}
        succs: dict[str, list[str]] = {name: [] for name in entries}
        known = [*names, *entries]
        for name, inputs in refs.items():
            for ref, loc in inputs:
                dep = self._local_dep(ref, entries)
                if dep is not None:
                    if dep not in preds[name]:
                        preds[name].add(dep)
                        succs[dep].append(name)
                elif ref not in names:
                    try:
                        target = b.qualify(ref)  # '.' has no meaning outside a block call
                    except SpecError as e:
                        raise e.located(loc, b.qualify(name)) from None
                    if target not in b.graph:
                        raise self._unknown_ref(ref, loc, b.qualify(name), known)
        position = {n: i for i, n in enumerate(entries)}
        waiting = {name: len(p) for name, p in preds.items()}
        ready = [position[n] for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order: list[str] = []
        names_in_order = list(entries)
        while ready:
            name = names_in_order[heapq.heappop(ready)]
            order.append(name)
            for nxt in succs[name]:
                waiting[nxt] -= 1
                if waiting[nxt] == 0:
                    heapq.heappush(ready, position[nxt])
        if len(order) == len(entries):
            return order
        raise self._cycle({n for n, count in waiting.items() if count > 0}, preds, b, nodes)

    def _cycle(
        self, stuck: set[str], preds: dict[str, set[str]], b: BoundedBuilder, nodes: LDict
    ) -> SpecError:
        """A cycle among the entries Kahn's order could not place (each waits on another of them)."""
        position = {n: i for i, n in enumerate(nodes)}
        walk: list[str] = []
        seen: dict[str, int] = {}
        node = min(stuck, key=position.__getitem__)
        while node not in seen:
            seen[node] = len(walk)
            walk.append(node)
            node = min((p for p in preds[node] if p in stuck), key=position.__getitem__)
        path = list(reversed(walk[seen[node] :]))  # walked against the wiring: reverse it
        first = min(path, key=lambda n: (nodes.key_locs[n].line or 0, nodes.key_locs[n].col or 0))
        start = path.index(first)
        path = path[start:] + path[:start]
        return SpecError(
            "the wiring has a cycle: " + " -> ".join([*path, path[0]]),
            loc=nodes.key_locs[first],
            node=b.qualify(first),
            expected="a DAG: every node's inputs defined without depending on the node itself",
            found="a cycle",
            hint="check the `in:` of these nodes (an entry without `in:` takes the previous entry)",
        )

    @staticmethod
    def _unknown_ref(ref: str, loc: Loc, node: str, known: list[str]) -> SpecError:
        return SpecError(
            f"unknown input name '{ref[:60]}'",
            loc=loc,
            node=node,
            expected="an input or a node of this scope: "
            + ", ".join(known[:8])
            + (" ..." if len(known) > 8 else ""),
            found=f"'{ref[:60]}'",
            hint=did_you_mean(ref, known),
        )

    # ---- entries --------------------------------------------------------------------------
    def run_entry(
        self,
        b: BoundedBuilder,
        name: str,
        entry: LDict,
        inputs: list[tuple[str, Loc]],
        env: dict[str, Any],
        values: dict[str, Value],
        loc: Loc,
    ) -> Value:
        node_id = b.qualify(name)
        ins = [self._lookup(b, ref, ref_loc, node_id, values) for ref, ref_loc in inputs]
        if "when" in entry and not self.resolve(entry["when"], env, entry.loc_of("when")):
            if not ins:
                raise SpecError(
                    "`when:` false passes the first input through, but this node has no inputs",
                    loc=entry.loc_of("when"),
                    node=node_id,
                )
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
                    raise SpecError(
                        "`repeat` applies to blocks",
                        hint="wrap the op in a block template",
                        loc=entry.loc_of("repeat"),
                        node=node_id,
                    )
                op = _expect(entry["op"], str, "`op`", entry.loc_of("op"), "an op name")
                share = None
                if "share" in entry:
                    share = self.resolve(entry["share"], env, entry.loc_of("share"))
                    _expect(share, str, "`share`", entry.loc_of("share"), "a node id")
                return b.node(op, *ins, name=name, loc=loc, share=share, **self._args(entry, env))
            if "share" in entry:
                raise SpecError(
                    "`share` applies to ops",
                    hint="a block that shares weights takes an argument for it (widenet_block)",
                    loc=entry.loc_of("share"),
                    node=node_id,
                )
            return self._call_block(b, name, entry, ins, env, loc)
        except ArchgraphError as e:
            if e.node == node_id and e.field in entry:
                e.loc = entry.loc_of(e.field)  # point at the key at fault, not just the node
            raise

    def _args(self, entry: LDict, env: dict[str, Any]) -> dict[str, Any]:
        return {
            k: self.resolve(v, env, entry.loc_of(k))
            for k, v in entry.items()
            if k not in ENTRY_KEYS
        }

    def _lookup(
        self, b: BoundedBuilder, ref: str, loc: Loc, node_id: str, values: dict[str, Value]
    ) -> Value:
        if ref in values:
            return values[ref]
        if b.qualify(ref) in b.graph:
            return b.value(b.qualify(ref))
        raise self._unknown_ref(ref, loc, node_id, list(values))

    def _call_block(
        self,
        b: BoundedBuilder,
        name: str,
        entry: LDict,
        ins: list[Value],
        env: dict[str, Any],
        loc: Loc,
    ) -> Value:
        block_name = _expect(entry["block"], str, "`block`", entry.loc_of("block"), "a block name")
        try:
            bdef = self.templates.get(block_name) or get_block(block_name)
        except SpecError as e:
            e.hint = did_you_mean(block_name, [*self.templates, *block_names()]) or (
                "`archgraph schema` lists the blocks; custom ones come from plugins (--plugin MODULE)"
            )
            e.loc = entry.loc_of("block")
            e.node = b.qualify(name)
            raise
        if "repeat" not in entry:
            return self._block_once(b, bdef, name, entry, ins, env, loc)
        times, start, prefix = self._repeat(b, name, entry, env)
        x = ins
        with b.scope(name):
            for i in range(start, start + times):
                x = [self._block_once(b, bdef, f"{prefix}{i}", entry, x, {**env, "i": i}, loc)]
        return x[0]

    def _repeat(
        self, b: BoundedBuilder, name: str, entry: LDict, env: dict[str, Any]
    ) -> tuple[int, int, str]:
        """`repeat: N` or `repeat: {count: N, start: S, prefix: P}` -> (N, S, P)."""
        loc = entry.loc_of("repeat")
        raw = self.resolve(entry["repeat"], env, loc)
        example = "a positive integer, or {count: N, start: S, prefix: P}"
        if isinstance(raw, dict):
            for key in raw:
                if key not in REPEAT_KEYS:
                    raise SpecError(
                        f"unknown key '{str(key)[:60]}' in `repeat`",
                        loc=loc,
                        node=b.qualify(name),
                        expected=", ".join(REPEAT_KEYS),
                        hint=did_you_mean(str(key), REPEAT_KEYS),
                    )
            if "count" not in raw:
                raise SpecError(
                    "`repeat` needs a `count`", loc=loc, node=b.qualify(name), expected=example
                )
            times, start, prefix = raw["count"], raw.get("start", 0), raw.get("prefix", "")
            _expect(start, int, "`start` of `repeat`", loc, "an integer >= 0")
            _expect(prefix, str, "`prefix` of `repeat`", loc, "a name part, e.g. block1-")
            if start < 0:
                raise SpecError(
                    "repeat start is negative", loc=loc, expected=">= 0", found=str(start)
                )
            if prefix:
                _check_name(f"{prefix}{start}", "repeated block name", loc, node=b.qualify(name))
        else:
            times, start, prefix = raw, 0, ""
        _expect(times, int, "`repeat`", loc, example)
        if not 1 <= times <= self.limits.max_repeat:
            raise SpecError(
                "repeat count out of range",
                loc=loc,
                node=b.qualify(name),
                expected=f"1..{self.limits.max_repeat}",
                found=str(times),
                hint=limit_hint("max_repeat") if times > self.limits.max_repeat else None,
            )
        return times, start, prefix

    def _block_once(
        self,
        b: BoundedBuilder,
        bdef: BlockDef,
        name: str,
        entry: LDict,
        ins: list[Value],
        env: dict[str, Any],
        loc: Loc,
    ) -> Value:
        node_id = b.qualify(name)
        if bdef.num_inputs is not None and len(ins) != bdef.num_inputs:
            raise SpecError(
                f"block '{bdef.name}' got the wrong number of inputs",
                loc=entry.loc_of("in"),
                node=node_id,
                expected=f"{bdef.num_inputs} input(s)",
                found=str(len(ins)),
                hint="list its inputs in `in:`",
            )
        args = self._args(entry, env)
        for key, kind in param_kinds(bdef).items():
            if key in args:
                try:
                    kind.check(args[key])
                except ArgTypeError as e:
                    raise SpecError(
                        f"argument '{key}' of block '{bdef.name}' has the wrong type",
                        loc=entry.loc_of(key),
                        node=node_id,
                        expected=e.expected,
                        found=f"{_short(args[key])} ({type(args[key]).__name__})",
                    ) from None
        try:
            with b.called_from(loc):
                return b.block(bdef, *ins, name=name, loc=loc, **args)
        except ArchgraphError as e:
            raise e.located(loc, node_id) from None
        except Exception as e:
            raise RuleCrash.of(f"block '{bdef.name}'", e, loc, node_id) from e

    # ---- templates ------------------------------------------------------------------------
    def define_template(self, name: str, body: Any, loc: Loc, spec_env: dict[str, Any]) -> BlockDef:
        _check_name(name, "block template", loc)
        body = _expect(body, LDict, f"block template '{name}'", loc, "a mapping with `nodes:`")
        for key in body:
            if key not in TEMPLATE_KEYS:
                raise SpecError(
                    f"unknown key '{key[:60]}' in block template '{name}'",
                    loc=body.key_locs[key],
                    expected=", ".join(TEMPLATE_KEYS),
                    hint=did_you_mean(key, TEMPLATE_KEYS),
                )
        params_raw = body.get("params", LDict())
        _expect(
            params_raw,
            LDict,
            f"`params` of block '{name}'",
            body.loc_of("params"),
            "a mapping of name -> default (null: required)",
        )
        for key in params_raw:
            _check_name(
                key, f"parameter of block '{name}'", params_raw.key_locs[key], identifier=True
            )
        params = {k: (REQUIRED if v is None else v) for k, v in params_raw.items()}
        input_names = body.get("inputs", ["input"])
        _expect(
            input_names,
            list,
            f"`inputs` of block '{name}'",
            body.loc_of("inputs"),
            "a list of names",
        )
        for i, input_name in enumerate(input_names):
            iloc = input_names.loc_of(i) if isinstance(input_names, LList) else body.loc
            _expect(input_name, str, f"an input of block '{name}'", iloc, "a name")
            _check_name(input_name, f"input of block '{name}'", iloc)
        if "nodes" not in body:
            raise SpecError(
                f"block template '{name}' has no `nodes:`", loc=loc, expected="a `nodes:` mapping"
            )
        output = body.get("output")
        if output is not None:
            _expect(
                output, str, f"`output` of block '{name}'", body.loc_of("output"), "a node name"
            )

        def run(bb: BoundedBuilder, *inputs: Value, **args: Any) -> Value:
            if len(inputs) != len(input_names):
                raise SpecError(
                    f"block '{name}' got the wrong number of inputs",
                    expected=f"{len(input_names)} ({', '.join(input_names)})",
                    found=str(len(inputs)),
                )
            self._enter_template(name, bb)
            try:
                env = {
                    **spec_env,
                    **_input_names(inputs),
                    **{k: v for k, v in params.items() if v is not REQUIRED},
                    **args,
                }
                last = self.run_scope(
                    bb,
                    body["nodes"],
                    body.loc_of("nodes"),
                    env,
                    dict(zip(input_names, inputs, strict=True)),
                )
            finally:
                self.calls.pop()
            if output is None:
                if last is None:
                    raise SpecError(
                        f"block template '{name}' has no nodes", loc=body.loc_of("nodes")
                    )
                return last
            if bb.qualify(output) not in bb.graph:
                raise SpecError(
                    f"block output '{output[:60]}' is not a node of block '{name}'",
                    loc=body.loc_of("output"),
                    hint=did_you_mean(
                        output, body["nodes"] if isinstance(body["nodes"], dict) else []
                    ),
                )
            return bb.value(bb.qualify(output))

        doc = body.get("description", f"template defined in {loc.file}")
        _expect(
            doc, str, f"`description` of block '{name}'", body.loc_of("description"), "a string"
        )
        return BlockDef(name, run, doc, params, len(input_names))

    def _enter_template(self, name: str, b: BoundedBuilder) -> None:
        if name in self.calls:
            chain = " -> ".join([*self.calls[self.calls.index(name) :], name])
            raise SpecError(
                f"block template '{name}' calls itself: {chain}",
                expected="templates that do not recurse",
                found="a recursive call",
            )
        if len(self.calls) >= self.limits.max_depth:
            raise SpecError(
                "block calls are nested too deeply",
                expected=f"at most {self.limits.max_depth} levels",
                found=" -> ".join(self.calls[:3]) + " -> ...",
                hint=limit_hint("max_depth"),
            )
        self.calls.append(name)

    # ---- the whole spec -------------------------------------------------------------------
    def build(self, batch: int, overrides: Mapping[str, Any]) -> Graph:
        spec = self.spec
        for key in spec:
            if key not in TOP_KEYS:
                raise SpecError(
                    f"unknown top-level key '{key[:60]}'",
                    loc=spec.key_locs[key],
                    expected=", ".join(TOP_KEYS),
                    found=key[:60],
                    hint=did_you_mean(key, TOP_KEYS),
                )
        if "archgraph" in spec and (
            spec["archgraph"] != FORMAT_VERSION or isinstance(spec["archgraph"], bool)
        ):
            raise SpecError(
                "unsupported spec format version",
                loc=spec.loc_of("archgraph"),
                expected=f"archgraph: {FORMAT_VERSION}",
                found=_short(spec["archgraph"]),
            )
        for key in ("name", "inputs", "nodes"):
            if key not in spec:
                raise SpecError(
                    f"the spec has no `{key}:`", loc=spec.loc, expected=f"a top-level `{key}:` key"
                )
        name = _expect(spec["name"], str, "`name`", spec.loc_of("name"), "a string")
        description = _expect(
            spec.get("description", ""),
            str,
            "`description`",
            spec.loc_of("description"),
            "a string",
        )
        env = self._params(
            spec.get("params", LDict(loc=spec.loc)), spec.loc_of("params"), overrides
        )
        try:
            b = BoundedBuilder(name, description, batch=batch, limits=self.limits)
        except ArchgraphError as e:
            raise e.located(spec.loc) from None
        blocks = _expect(
            spec.get("blocks", LDict(loc=spec.loc)),
            LDict,
            "`blocks`",
            spec.loc_of("blocks"),
            "a mapping of block name -> template",
        )
        for tname, body in blocks.items():
            self.templates[tname] = self.define_template(tname, body, blocks.key_locs[tname], env)
        inputs = self._inputs(b, spec["inputs"], spec.loc_of("inputs"), env)
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
                    raise SpecError(
                        f"unknown output '{ref[:60]}'",
                        loc=oloc,
                        hint=did_you_mean(ref, list(b.graph.nx.nodes)),
                    )
                b.output(b.value(ref))
        try:
            return b.build()
        except ArchgraphError as e:
            raise e.located(spec.loc_of("outputs")) from None

    def _params(self, raw: Any, loc: Loc, overrides: Mapping[str, Any]) -> dict[str, Any]:
        raw = _expect(raw, LDict, "`params`", loc, "a mapping of name -> default value")
        for key in overrides:
            if key not in raw:
                raise SpecError(
                    f"unknown spec parameter '{key}'",
                    loc=loc,
                    expected=", ".join(raw) or "none",
                    found=key,
                    hint=did_you_mean(key, raw),
                )
        env: dict[str, Any] = {}
        for key, value in raw.items():
            _check_name(key, "spec parameter", raw.key_locs[key], identifier=True)
            env[key] = (
                overrides[key] if key in overrides else self.resolve(value, env, raw.loc_of(key))
            )
        return env

    def _inputs(
        self, b: BoundedBuilder, raw: Any, loc: Loc, env: dict[str, Any]
    ) -> dict[str, Value]:
        raw = _expect(
            raw,
            LDict,
            "`inputs`",
            loc,
            "a mapping of input name -> per-sample shape, e.g. {x: [3, 224, 224]}",
        )
        if not raw:
            raise SpecError(
                "the spec has no inputs",
                loc=loc,
                expected="at least one input, e.g. {x: [3, 224, 224]}",
            )
        values = {}
        for key, value in raw.items():
            vloc = raw.loc_of(key)
            _check_name(key, "input name", raw.key_locs[key], node=key)
            value = self.resolve(value, env, vloc)
            dtype = "float32"
            if isinstance(value, dict):
                for k in value:
                    if k not in INPUT_KEYS:
                        raise SpecError(
                            f"unknown key '{k[:60]}' in input '{key}'",
                            loc=vloc,
                            node=key,
                            expected=", ".join(INPUT_KEYS),
                            hint=did_you_mean(k, INPUT_KEYS),
                        )
                dtype = value.get("dtype", "float32")
                if not isinstance(dtype, str) or dtype not in DTYPES:
                    raise SpecError(
                        f"unknown dtype for input '{key}'",
                        loc=vloc,
                        node=key,
                        expected=" | ".join(DTYPES),
                        found=_short(dtype),
                        hint=did_you_mean(str(dtype), DTYPES),
                    )
                value = value.get("shape")
            shape = _expect(
                value,
                list,
                f"shape of input '{key}'",
                vloc,
                "a list of positive sizes, e.g. [3, 224, 224]",
            )
            numel = b.batch
            for d in shape:
                _expect(d, int, f"a size in input '{key}'", vloc, "a positive integer")
                numel *= max(d, 1)
            if numel > self.limits.max_tensor_elements:
                raise SpecError(
                    f"input '{key}' is too large",
                    loc=vloc,
                    node=key,
                    expected=f"at most {self.limits.max_tensor_elements} elements",
                    found=str(numel),
                    hint=limit_hint("max_tensor_elements"),
                )
            values[key] = b.input(key, shape, dtype, loc=vloc)
        return values


def _input_names(inputs: tuple[Value, ...]) -> dict[str, Any]:
    """What a template's expressions may read of its first input: `in_channels` (dim 1) and
    `in_shape` (the per-sample shape)."""
    if not inputs:
        return {}
    shape = list(inputs[0].shape[1:])
    return {"in_channels": shape[0], "in_shape": shape} if shape else {"in_shape": shape}


def build_graph(
    spec: Any,
    file: str,
    *,
    batch: int = 1,
    params: Mapping[str, Any] | None = None,
    limits: Limits = Limits(),
) -> Graph:
    """Interpret a parsed spec (from parse_yaml) into a validated Graph."""
    if not isinstance(spec, LDict):
        raise SpecError(
            "the spec must be a mapping at its top level",
            loc=getattr(spec, "loc", Loc(file, 1, 1)),
            expected="name:, inputs:, nodes: ...",
            found=type(spec).__name__,
        )
    return _Interpreter(spec, limits).build(batch, params or {})
