"""Graph verification: acyclic, well-wired, every node's args and type agree with its op's rules.

Run after building and after every pass; a failure is a bug in whoever produced the graph."""

from __future__ import annotations

import networkx as nx

from archgraph.errors import ArchgraphError, GraphError
from archgraph.ir.aliasing import may_overwrite
from archgraph.ir.graph import Graph
from archgraph.ir.sharing import check_shared
from archgraph.ops.registry import ShapeMismatch, get_op


def validate(graph: Graph) -> None:
    if not nx.is_directed_acyclic_graph(graph.nx):
        cycle = " -> ".join(src for src, _ in nx.find_cycle(graph.nx))
        raise GraphError(f"the graph has a cycle: {cycle}")
    if not graph.outputs:
        raise GraphError("the graph has no outputs", hint="name at least one node under `outputs`")
    for out in graph.outputs:
        if out not in graph:
            raise GraphError(f"output '{out}' is not a node of the graph")
    for node in graph.nodes():
        try:
            op = get_op(node.op)
            op.check_arity(len(node.inputs))
            if op.normalize_args(node.args) != node.args:
                raise GraphError("args are not in normal form", found=str(node.args))
            preds = set(graph.nx.predecessors(node.id))
            if preds != set(node.inputs):
                raise GraphError(
                    "edges disagree with the node's inputs",
                    expected=str(sorted(set(node.inputs))),
                    found=str(sorted(preds)),
                )
            ins = [graph[i].type for i in node.inputs]
            inferred = op.infer(node.args, ins)
        except ShapeMismatch as e:
            raise GraphError(
                e.message, node=node.id, loc=node.loc, expected=e.expected, found=e.found
            ) from None
        except ArchgraphError as e:
            raise e.located(node.loc, node.id) from None
        if inferred != node.type:
            raise GraphError(
                "stored type disagrees with the op's shape rule",
                node=node.id,
                loc=node.loc,
                expected=str(inferred),
                found=str(node.type),
            )
        ow = op.overwrites
        overwritten = ow.index(node.args) if ow and node.args[ow.flag] else None
        if overwritten is not None and not may_overwrite(graph, node.inputs[overwritten], node.id):
            raise GraphError(
                f"the node overwrites input {overwritten} ('{node.inputs[overwritten]}'), which "
                "is read after it, is a graph output or is not a tensor of its own",
                node=node.id,
                loc=node.loc,
                hint="archgraph.ir.aliasing.may_overwrite says when an input may be overwritten",
            )
    check_shared(graph)
