"""Built-in blocks, callable from YAML (`block: bottleneck`) and Python (`b.block("bottleneck", ...)`).
Importing the package imports every module in it; each registers its blocks with @builtin."""

import importlib
import pkgutil

from archgraph.blocks.registry import BlockDef, block_names, get_block, register_block

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["BlockDef", "block_names", "get_block", "register_block"]
