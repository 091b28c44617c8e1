"""Graphs back to YAML: a flat spec that loads to the same graph.

Every node becomes one `op:` entry under its full id with its inputs (`in:`) and the arguments
that differ from the op's defaults; graph inputs are written with their per-sample shapes
(the batch dimension dropped), then the outputs. Loading the text with the graph's batch size
(`archgraph.load(path, batch=N)`) gives the same ids, ops, args, inputs, types and outputs.
Blocks, templates and expressions are not reconstructed: the result is the graph, spelled out.

Scalars are written with the resolver the loader uses, so a string that would read back as
something else (`1e5`, `true`, `null`) is quoted, and a string starting with `$` is escaped as
`$$` so it is not taken for an expression.
"""

from __future__ import annotations

from typing import Any

import yaml

from archgraph.errors import SpecError
from archgraph.ir.graph import Graph
from archgraph.ops.registry import PAIR, explicit, get_op
from archgraph.spec.interpret import ENTRY_KEYS, FORMAT_VERSION
from archgraph.spec.names import name_problem, name_rule
from archgraph.spec.yaml_source import SpecResolver


class _Dumper(yaml.SafeDumper):
    """SafeDumper whose quoting decisions follow the spec loader's scalar resolution."""

    yaml_implicit_resolvers = SpecResolver.yaml_implicit_resolvers


def _flow(value: Any) -> str:
    text = yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=True,
        width=2**31,
        allow_unicode=True,
        sort_keys=False,
    )
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _plain(value: Any) -> Any:
    """Normalized arg values as YAML data: tuples as lists, '$' strings escaped."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("$"):
        return "$" + value
    return value


def _check_name(node_id: str) -> str:
    problem = name_problem(node_id)
    if problem is not None:
        raise SpecError(
            f"node id '{node_id}' cannot be written in a spec: {problem}",
            node=node_id,
            expected=name_rule(),
            hint="rename the node (Builder name=...)",
        )
    return node_id


def graph_to_spec(graph: Graph) -> dict[str, Any]:
    """The graph as spec data (what graph_to_yaml writes)."""
    inputs: dict[str, Any] = {}
    nodes: dict[str, Any] = {}
    for node in graph.nodes():
        _check_name(node.id)
        if node.op == "input":
            shape = list(node.type.shape[1:])
            inputs[node.id] = (
                shape
                if node.type.dtype == "float32"
                else {"shape": shape, "dtype": node.type.dtype}
            )
            continue
        opdef = get_op(node.op)
        clash = set(opdef.args) & set(ENTRY_KEYS)
        if clash:
            raise SpecError(
                f"op '{node.op}' has an argument named like an entry key: {', '.join(sorted(clash))}",
                node=node.id,
            )
        entry: dict[str, Any] = {
            "op": node.op,
            "in": node.inputs[0] if len(node.inputs) == 1 else list(node.inputs),
        }
        if node.share is not None:
            entry["share"] = node.share
        for key, value in explicit(node.args, opdef.args).items():
            if opdef.args[key].kind is PAIR and value[0] == value[1]:
                value = value[0]  # `kernel_size: 3`, as people write it
            entry[key] = _plain(value)
        nodes[node.id] = entry
    spec: dict[str, Any] = {"archgraph": FORMAT_VERSION, "name": graph.name}
    if graph.description:
        spec["description"] = graph.description
    spec.update({"inputs": inputs, "nodes": nodes, "outputs": list(graph.outputs)})
    return spec


def graph_to_yaml(graph: Graph) -> str:
    """A flat YAML spec of the graph; loading it (with the same batch size) gives the same graph."""
    spec = graph_to_spec(graph)
    batches = {graph[i].type.shape[0] for i in graph.inputs if graph[i].type.shape}
    lines = [f"# {graph.name}: {len(graph)} nodes, written by archgraph (archgraph.spec.emit)"]
    if batches and batches != {1}:
        lines.append(
            f"# inferred at batch {', '.join(map(str, sorted(batches)))}: load with that batch size"
        )
    for key in ("archgraph", "name", "description"):
        if key in spec:
            lines.append(f"{key}: {_flow(spec[key])}")
    for section in ("inputs", "nodes"):
        lines.append(f"{section}:" if spec[section] else f"{section}: {{}}")
        lines.extend(f"  {_flow(k)}: {_flow(v)}" for k, v in spec[section].items())
    lines.append(f"outputs: {_flow(spec['outputs'])}")
    return "\n".join(lines) + "\n"
