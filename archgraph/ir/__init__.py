"""The typed IR: Graph, Node and TensorType here; validation (archgraph.ir.validate) and weights
(archgraph.ir.weights) consult the op registry, so they are imported from their modules."""

from archgraph.ir.graph import Graph, Node
from archgraph.ir.types import TensorType

__all__ = ["Graph", "Node", "TensorType"]
