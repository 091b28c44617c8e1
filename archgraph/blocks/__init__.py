"""Built-in blocks, callable from YAML (`block: bottleneck`) and Python (`b.block("bottleneck", ...)`)."""

from archgraph.blocks import residual
from archgraph.blocks.registry import BlockDef, block_names, get_block, register_block

__all__ = ["BlockDef", "block_names", "get_block", "register_block"]
_BUILTINS = (residual,)
