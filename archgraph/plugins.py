"""Plugins: the only way code enters archgraph from outside.

A plugin is a Python module that registers ops and blocks when imported
(`archgraph.register_op(OpDef(...))`, `archgraph.register_block(fn)`). The person running
archgraph names it — `archgraph compile spec.yaml --plugin my_ops`, or `load_plugin("my_ops")` in
Python — and only then is it imported. A spec can never name a module: it can only use the ops
and blocks that are registered, by name.

A plugin is a module name on sys.path (the current directory included) or a path to a .py file.
See examples/plugin_custom_op.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from archgraph.errors import ArchgraphError, Loc

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class PluginError(ArchgraphError):
    """A plugin that cannot be found or fails while it is imported."""


def _where(exc: BaseException) -> Loc | None:
    """The innermost frame of the plugin's failure: its file and line."""
    frames = traceback.extract_tb(exc.__traceback__)
    return Loc(frames[-1].filename, frames[-1].lineno) if frames else None


def _import_file(path: Path) -> ModuleType:
    name = f"archgraph_plugin_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}"
    key = str(path.resolve())
    for module in sys.modules.values():
        if getattr(module, "__file__", None) == key:
            return module  # already loaded: importing twice would register everything twice
    spec = importlib.util.spec_from_file_location(name, key)
    if spec is None or spec.loader is None:
        raise PluginError(
            f"cannot load plugin file '{path}'", loc=Loc(str(path)), expected="a Python file (.py)"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_plugin(name: str) -> ModuleType:
    """Import one plugin (a module name or a .py path); its imports register ops and blocks."""
    path = Path(name)
    is_file = name.endswith(".py") or "/" in name or "\\" in name
    if not is_file and not _MODULE_NAME.fullmatch(name):
        raise PluginError(
            f"'{name}' is not a module name or a .py file",
            expected="a.module.name or path/to/plugin.py",
            found=name,
        )
    if is_file and not path.is_file():
        raise PluginError(f"plugin file '{name}' does not exist", loc=Loc(name))
    try:
        if is_file:
            return _import_file(path)
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(
                0, str(Path.cwd())
            )  # as `python -m` would: plugins next to the user's specs
        return importlib.import_module(name)
    except ArchgraphError:
        raise
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + ".")):
            raise PluginError(
                f"no plugin module named '{name}'",
                found=name,
                hint="give a module importable from here, or a path to a .py file",
            ) from None
        raise PluginError(f"plugin '{name}' failed to import: {e}", loc=_where(e)) from e
    except Exception as e:
        raise PluginError(
            f"plugin '{name}' failed while loading: {type(e).__name__}: {e}", loc=_where(e)
        ) from e


def load_plugins(names: Iterable[str]) -> list[ModuleType]:
    return [load_plugin(n) for n in names]
