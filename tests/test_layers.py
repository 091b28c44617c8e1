"""The import graph points down the layers of docs/ARCHITECTURE.md: every archgraph module's
imports (read from its source: top-level, function-local and TYPE_CHECKING ones alike) name only
its own layer or the layers it may use."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Layer of a module: the longest matching prefix (docs/ARCHITECTURE.md, "Layers").
LAYER_OF = {
    "archgraph.errors": "base",
    "archgraph.ir": "ir",
    # validation, weight binding and parameter sharing read the op registry (shape rules,
    # ParamSpecs)
    "archgraph.ir.validate": "ops",
    "archgraph.ir.weights": "ops",
    "archgraph.ir.sharing": "ops",
    "archgraph.ir.aliasing": "ops",  # reads OpDef.fresh_output
    "archgraph.ops": "ops",
    # analytic costs: the ops' cost rules summed over a graph (no measurement), which the
    # architecture-changing passes report as well as the profiler
    "archgraph.profile.costs": "ops",
    "archgraph.builder": "front end",
    "archgraph.blocks": "front end",
    "archgraph.spec": "front end",
    "archgraph.plugins": "front end",
    "archgraph.passes": "passes",
    "archgraph.codegen": "codegen",
    "archgraph.profile": "profile",
    "archgraph.api": "api",
    "archgraph.outputs": "api",  # the one output writer: path checks, atomic files and folders
    # tools over the API: design-space sweeps and the trainer load and compile through it
    "archgraph.sweep": "api",
    "archgraph.train": "api",
    "archgraph": "api",  # the package's __init__: the public names of the API
    "archgraph.cli": "cli",
    "archgraph.__main__": "cli",
}

# What each layer may import besides itself.
MAY_USE = {
    "base": set(),
    "ir": {"base"},
    "ops": {"ir", "base"},
    "front end": {"ops", "ir", "base"},
    "passes": {"ops", "ir", "base"},
    "codegen": {"passes", "ops", "ir", "base"},
    "profile": {"codegen", "passes", "ops", "ir", "base"},
    "api": {"profile", "codegen", "passes", "front end", "ops", "ir", "base"},
    "cli": {"api", "profile", "codegen", "passes", "front end", "ops", "ir", "base"},
}


def module_name(path: Path) -> str:
    """The installed name of a source file (codegen/ is installed as archgraph.codegen)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "codegen":
        parts = ["archgraph", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(module: str) -> str:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        found = LAYER_OF.get(".".join(parts[:n]))
        if found is not None:
            return found
    raise AssertionError(f"{module} is in no layer: add it to LAYER_OF and docs/ARCHITECTURE.md")


def imports(path: Path, module: str) -> set[str]:
    """The archgraph modules a source file imports, anywhere in it."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base]
        else:
            continue
        found.update(n for n in names if n == "archgraph" or n.startswith("archgraph."))
    return found


def sources() -> list[Path]:
    return sorted([*ROOT.glob("archgraph/**/*.py"), *ROOT.glob("codegen/**/*.py")])


def upward_imports() -> set[tuple[str, str]]:
    bad = set()
    for path in sources():
        module = module_name(path)
        own = layer(module)
        for target in imports(path, module):
            if layer(target) != own and layer(target) not in MAY_USE[own]:
                bad.add((module, target))
    return bad


def test_every_module_imports_only_down() -> None:
    bad = sorted(upward_imports())
    assert not bad, "upward imports:\n" + "\n".join(
        f"  {m} ({layer(m)}) imports {t} ({layer(t)})" for m, t in bad
    )


def test_the_checker_sees_upward_and_local_imports(tmp_path: Path) -> None:
    """The reader finds a function-local and a relative import, and the rule refuses them."""
    src = tmp_path / "mod.py"
    src.write_text(
        "from archgraph.ir.types import TensorType\n"
        "def f():\n"
        "    from archgraph.codegen.fx import lower\n"
        "    from ..passes import manager\n"
    )
    found = imports(src, "archgraph.ops.mod")
    assert found == {"archgraph.ir.types", "archgraph.codegen.fx", "archgraph.passes"}
    assert "codegen" not in MAY_USE[layer("archgraph.ops.mod")]
    assert "passes" not in MAY_USE[layer("archgraph.ops.mod")]
    assert "ir" in MAY_USE[layer("archgraph.ops.mod")]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("archgraph.codegen.kernels.cuda.groups", "codegen"),
        ("archgraph.ir.graph", "ir"),
        ("archgraph.ir.weights", "ops"),
        ("archgraph.passes.prune.structured", "passes"),
        ("archgraph.spec.expr", "front end"),
    ],
)
def test_layer_of_a_module(module: str, expected: str) -> None:
    assert layer(module) == expected


def test_codegen_is_read_as_archgraph_codegen() -> None:
    assert module_name(ROOT / "codegen" / "kernels" / "cpu.py") == "archgraph.codegen.kernels.cpu"
    assert module_name(ROOT / "codegen" / "__init__.py") == "archgraph.codegen"
