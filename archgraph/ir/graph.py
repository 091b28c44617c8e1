"""The IR: a typed DAG over networkx. Nodes carry op, normalized args, ordered inputs, the output
type and a dotted hierarchical id; the graph also holds its weights (one home for them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import networkx as nx
import torch

from archgraph.errors import GraphError, Loc
from archgraph.ir.types import TensorType


@dataclass(frozen=True)
class Node:
    id: str
    op: str
    inputs: tuple[str, ...]
    args: dict[str, Any]
    type: TensorType
    loc: Loc | None = None
    share: str | None = None  # the node whose parameters this one uses (archgraph.ir.sharing)

    @property
    def param_owner(self) -> str:
        """The id under which this node's parameters live: its own, or the shared node's."""
        return self.share or self.id

    @property
    def scope(self) -> str:
        """The dotted prefix of the id ('layer1.0' for 'layer1.0.conv1'), '' at top level."""
        return self.id.rpartition(".")[0]

    def evolve(self, **changes: Any) -> Node:
        return replace(self, **changes)


@dataclass
class Graph:
    """A network. `nx` holds the nodes (attribute 'node') and one edge input -> consumer per
    distinct input (the node's `inputs` keep order and repeats); node insertion order is a
    topological order. `weights` maps '<node id>.<param>' to tensors."""

    name: str
    description: str = ""
    outputs: list[str] = field(default_factory=list)
    weights: dict[str, torch.Tensor] | None = None
    nx: nx.DiGraph = field(default_factory=nx.DiGraph)

    # ---- building -------------------------------------------------------------------------
    def add(self, node: Node) -> Node:
        if node.id in self.nx:
            raise GraphError(f"duplicate node id '{node.id}'", node=node.id, loc=node.loc)
        for src in node.inputs:
            if src not in self.nx:
                raise GraphError(
                    f"input '{src}' is not a node of the graph", node=node.id, loc=node.loc
                )
        self.nx.add_node(node.id, node=node)
        # one edge per distinct input: node.inputs keeps the order, and a node may read one value
        # more than once (x * x)
        self.nx.add_edges_from((src, node.id) for src in node.inputs)
        return node

    # ---- queries --------------------------------------------------------------------------
    def __contains__(self, node_id: str) -> bool:
        return node_id in self.nx

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def __getitem__(self, node_id: str) -> Node:
        return self.nx.nodes[node_id]["node"]

    def nodes(self) -> Iterator[Node]:
        """All nodes in insertion order, which is topological: `add` is the only way in, and it
        refuses a node before its inputs."""
        for node_id in self.nx.nodes:
            yield self[node_id]

    @property
    def inputs(self) -> list[str]:
        return [n.id for n in self.nodes() if n.op == "input"]

    def consumers(self, node_id: str) -> list[str]:
        return list(self.nx.successors(node_id))

    def copy(self) -> Graph:
        g = Graph(
            self.name,
            self.description,
            list(self.outputs),
            dict(self.weights) if self.weights else None,
        )
        for node in self.nodes():
            g.add(node)
        return g

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self)} nodes, outputs {self.outputs}>"
