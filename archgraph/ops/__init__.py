"""The op registry and the built-in ops (one module per op family; importing registers them)."""

from archgraph.ops import activation, attention, conv, elementwise, linear, matmul, misc, norm, pool, shape
from archgraph.ops.registry import OpDef, get_op, op_names, register_op

__all__ = ["OpDef", "get_op", "op_names", "register_op"]
_FAMILIES = (activation, attention, conv, elementwise, linear, matmul, misc, norm, pool, shape)
