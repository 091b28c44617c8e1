"""The op registry and the built-in ops: one module per op family in this package. Importing the
package imports every module in it, and each module registers its ops, so adding an op family is
adding one file."""

import importlib
import pkgutil

from archgraph.ops.registry import OpDef, get_op, op_names, register_op

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["OpDef", "get_op", "op_names", "register_op"]
