"""The typed IR: Graph, Node, TensorType, validation, weights."""

from archgraph.ir.graph import Graph, Node
from archgraph.ir.types import TensorType
from archgraph.ir.validate import validate
from archgraph.ir.weights import bind_weights, count_params, init_weights, param_specs

__all__ = ["Graph", "Node", "TensorType", "bind_weights", "count_params", "init_weights", "param_specs", "validate"]
