"""Graph editing for passes: a Rewriter holds an editable copy of a graph (nodes, weights,
outputs, consumer lists) and builds a new, verified-shape Graph from it.

Order: every node keeps its position in the source graph's topological order; a new node is
placed right after a given node. `build` sorts topologically, taking the earliest position
first, so the lowered code runs nodes in an order close to the source (which keeps activation
lifetimes as the author wrote them). Weights are carried over for the parameters the new graph
has; a pass puts the tensors of new or changed parameters into `weights`.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any

import torch

from archgraph.errors import GraphError
from archgraph.ir.graph import Graph, Node
from archgraph.ir.types import TensorType
from archgraph.ir.weights import param_key, param_specs
from archgraph.ops.registry import get_op


class Rewriter:
    def __init__(self, graph: Graph) -> None:
        self.source = graph
        self.nodes: dict[str, Node] = {}
        self.rank: dict[str, tuple[int, ...]] = {}
        self.users: dict[str, list[str]] = {}
        # Graph.add takes inputs before consumers, so insertion order is topological
        for position, (_, node) in enumerate(graph.nx.nodes(data="node")):
            self.nodes[node.id] = node
            self.rank[node.id] = (position,)
            self.users[node.id] = []
        for node in self.nodes.values():
            for src in node.inputs:
                self.users[src].append(node.id)
        self.weights: dict[str, torch.Tensor] = dict(graph.weights or {})
        self.outputs = list(graph.outputs)
        self._counter = itertools.count(1)
        self._shared = {i for n in self.nodes.values() if n.share for i in (n.id, n.share)}

    # ---- queries --------------------------------------------------------------------------
    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.nodes

    def order(self) -> list[Node]:
        """Current nodes in a topological order (earliest position first)."""
        return [self.nodes[i] for i in self._toposort()]

    def consumers(self, node_id: str) -> list[str]:
        return list(self.users[node_id])

    def is_output(self, node_id: str) -> bool:
        return node_id in self.outputs

    def only_consumer(self, node_id: str) -> str | None:
        """The single consumer of a node that is not a graph output, else None."""
        users = self.users[node_id]
        if len(users) != 1 or self.is_output(node_id):
            return None
        return users[0]

    def concats_channels(self, node_id: str) -> bool:
        """The node concatenates its inputs along dim 1: its op's channel rule is "concat"
        (along the op's `dim` arg)."""
        node = self.nodes[node_id]
        rule_of = get_op(node.op).channels
        if rule_of is None or node.type.rank < 2:
            return False
        rule = rule_of(dict(node.args), [self.nodes[i].type for i in node.inputs])
        return rule.kind == "concat" and node.args["dim"] % node.type.rank == 1

    def shares_params(self, node_id: str) -> bool:
        """Whether the node uses another node's parameters or another node uses its
        (archgraph.ir.sharing): passes that change one node's parameters or op leave it alone."""
        return node_id in self._shared

    def weight(self, node_id: str, name: str) -> torch.Tensor:
        return self.weights[param_key(node_id, name)]

    def fresh_id(self, base: str) -> str:
        candidate, n = base, 1
        while candidate in self.nodes:
            candidate, n = f"{base}_{n}", n + 1
        return candidate

    # ---- making nodes ---------------------------------------------------------------------
    def make(self, node_id: str, op: str, inputs: tuple[str, ...], **args: Any) -> Node:
        """A node of `op` over current nodes, its args normalized and its type inferred."""
        opdef = get_op(op)
        norm = opdef.normalize_args(args)
        ins = [self.nodes[i].type for i in inputs]
        out: TensorType = opdef.infer(norm, ins)
        old = self.nodes.get(node_id)
        loc, share = (old.loc, old.share) if old is not None else (None, None)
        return Node(node_id, op, tuple(inputs), norm, out, loc, share)

    # ---- editing --------------------------------------------------------------------------
    def put(self, node: Node, after: str | None = None) -> Node:
        """Insert a new node (placed right after `after`) or replace the node with its id."""
        old = self.nodes.get(node.id)
        if old is not None:
            for src in old.inputs:
                self.users[src].remove(node.id)
        else:
            if after is None:
                raise ValueError(f"new node '{node.id}' needs a place (after=)")
            self.rank[node.id] = (*self.rank[after], next(self._counter))
            self.users[node.id] = []
        self.nodes[node.id] = node
        for src in node.inputs:
            self.users[src].append(node.id)
        return node

    def can_redirect(self, old: str, new: str) -> bool:
        """Whether every consumer of `old` can read `new` instead: no consumer may end up with
        the same input twice (the IR has one edge per input pair)."""
        return all(new not in self.nodes[u].inputs for u in self.users[old])

    def redirect(self, old: str, new: str) -> None:
        """Every consumer of `old` (and the graph outputs) read `new` instead."""
        if not self.can_redirect(old, new):
            raise GraphError(f"cannot redirect '{old}' to '{new}': a consumer reads both")
        for user in list(self.users[old]):
            node = self.nodes[user]
            inputs = tuple(new if i == old else i for i in node.inputs)
            self.put(node.evolve(inputs=inputs))
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove(self, node_id: str) -> None:
        """Delete a node nobody reads any more (its weights are dropped at build)."""
        if self.users[node_id] or self.is_output(node_id):
            raise GraphError(f"cannot remove '{node_id}': it is still used")
        node = self.nodes.pop(node_id)
        for src in node.inputs:
            self.users[src].remove(node_id)
        del self.users[node_id]
        del self.rank[node_id]

    def bypass(self, node_id: str, by: str) -> None:
        """Consumers of `node_id` read `by` instead, and the node goes."""
        self.redirect(node_id, by)
        self.remove(node_id)

    def keep_only(self, live: set[str]) -> None:
        """Drop every node outside `live` (callers pass a set closed under inputs)."""
        for node_id in [i for i in self._toposort()[::-1] if i not in live]:
            self.remove(node_id)

    # ---- building -------------------------------------------------------------------------
    def _toposort(self) -> list[str]:
        pending = {i: len(n.inputs) for i, n in self.nodes.items()}
        ready = [(self.rank[i], i) for i, count in pending.items() if count == 0]
        heapq.heapify(ready)
        out: list[str] = []
        while ready:
            _, node_id = heapq.heappop(ready)
            out.append(node_id)
            for user in self.users[node_id]:
                pending[user] -= 1
                if pending[user] == 0:
                    heapq.heappush(ready, (self.rank[user], user))
        if len(out) != len(self.nodes):
            raise GraphError("a pass made a cycle")
        return out

    def build(self) -> Graph:
        src = self.source
        graph = Graph(src.name, src.description, list(self.outputs), None)
        for node_id in self._toposort():
            graph.add(self.nodes[node_id])
        if src.weights is not None:
            specs = param_specs(graph)
            missing = [key for key in specs if key not in self.weights]
            if missing:
                raise GraphError(
                    f"a pass left {len(missing)} parameter(s) without a tensor",
                    found=", ".join(missing[:3]),
                )
            graph.weights = {key: self.weights[key] for key in specs}
        return graph
