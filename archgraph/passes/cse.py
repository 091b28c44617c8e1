"""cse: common-subexpression elimination. Two nodes of the same op, arguments and inputs
compute the same value; the later one goes and its consumers read the earlier one. Only ops
without parameters are merged (two convs over one input hold different weights), and never
graph inputs. Ops that allocate state (a dense-block buffer) carry a tag that tells them apart.
"""

from __future__ import annotations

from archgraph.ir.graph import Graph
from archgraph.ops.registry import get_op
from archgraph.passes.manager import Change, Pass
from archgraph.passes.rewrite import Rewriter


def cse(graph: Graph) -> tuple[Graph, Change]:
    rw = Rewriter(graph)
    seen: dict[tuple[str, str, tuple[str, ...]], str] = {}
    inputs = set(graph.inputs)
    merged = 0
    for node_id in [n.id for n in rw.order()]:
        if node_id not in rw:
            continue
        node = rw[node_id]
        if node_id in inputs:
            continue
        ins = [rw[i].type for i in node.inputs]
        if get_op(node.op).params(node.args, ins):
            continue
        key = (node.op, repr(sorted(node.args.items())), node.inputs)
        first = seen.get(key)
        if first is None:
            seen[key] = node.id
        elif rw.can_redirect(node.id, first):
            rw.bypass(node.id, first)
            merged += 1
    return rw.build(), Change(notes=(f"merged {merged}",) if merged else ())


CSE = Pass("cse", "merge nodes computing the same parameter-free expression", cse)
