"""Analytic costs per node, from each op's own rules: params, MACs, FLOPs, activation bytes."""

from __future__ import annotations

from dataclasses import dataclass

from archgraph.ir.graph import Graph
from archgraph.ops.registry import get_op


@dataclass(frozen=True)
class NodeCost:
    id: str
    op: str
    shape: tuple[int, ...]
    params: int  # trainable parameters (buffers excluded)
    macs: int  # multiply-accumulates of conv/linear/matmul/attention
    flops: int  # all floating-point operations: 2 per MAC plus pointwise/reduction work
    out_bytes: int  # size of the node's output activation


def node_costs(graph: Graph) -> list[NodeCost]:
    """One NodeCost per node in topological order (graph inputs included, at zero cost)."""
    out = []
    for node in graph.nodes():
        op = get_op(node.op)
        ins = [graph[i].type for i in node.inputs]
        cost = op.cost(node.args, ins, node.type)
        params = sum(s.numel for s in op.params(node.args, ins).values() if s.trainable)
        out.append(NodeCost(node.id, node.op, node.type.shape, params, cost.macs, cost.flops, node.type.nbytes))
    return out


def totals(costs: list[NodeCost]) -> NodeCost:
    return NodeCost(
        "total",
        "",
        (),
        sum(c.params for c in costs),
        sum(c.macs for c in costs),
        sum(c.flops for c in costs),
        sum(c.out_bytes for c in costs),
    )
