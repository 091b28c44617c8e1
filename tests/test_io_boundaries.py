"""No module below the API parses command-line arguments or writes files: argument parsing is
archgraph/cli.py's, writing archgraph/outputs.py's (called from cli.py and api.py). An AST check
of every module of the installed package (archgraph/ and codegen/, installed as
archgraph.codegen), so a new `open(path, "w")` or `import argparse` deep inside fails here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = [ROOT / "archgraph", ROOT / "codegen"]
ALLOWED = {"archgraph/api.py", "archgraph/cli.py", "archgraph/outputs.py"}
# the tools on the API layer (docs/ARCHITECTURE.md) have commands and outputs of their own: a
# sweep's fsync'd results table and report, the trainer's atomic checkpoints
ALLOWED_PACKAGES = ("archgraph/sweep/", "archgraph/train/")
# the runtime's cache of compiled kernels (NVRTC cubins, keyed by source hash) is not an output:
# it lives under ~/.cache, is written atomically, and is rebuilt if missing
CACHES = {"codegen/kernels/cuda/runtime.py"}

# module.function calls that write, create or remove files
MODULE_CALLS = {
    "os": {"replace", "rename", "remove", "unlink", "makedirs", "mkdir", "rmdir"},
    "shutil": {"rmtree", "move", "copy", "copy2", "copyfile", "copytree"},
    "tempfile": {"mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryDirectory"},
    "torch": {"save"},
}
# pathlib methods that write (on any object: the receiver's type is not known statically)
PATH_METHODS = {"write_text", "write_bytes", "mkdir", "unlink", "touch", "rmdir"}
BARE = set().union(*(MODULE_CALLS[m] for m in ("shutil", "tempfile")))  # from tempfile import …
WRITE_FLAGS = {"O_WRONLY", "O_RDWR", "O_CREAT", "O_APPEND", "O_TRUNC"}


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _mode(call: ast.Call, position: int) -> str | None:
    """The mode argument of an open()-like call: "r" when absent, None when not a literal."""
    args = [
        *call.args[position : position + 1],
        *(k.value for k in call.keywords if k.arg == "mode"),
    ]
    if not args:
        return "r"
    if isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
        return args[0].value
    return None


def violations(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            if any(n and n.split(".")[0] == "argparse" for n in names):
                found.append(f"{node.lineno}: imports argparse")
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name in ("open", "fdopen"):
            if name == "open" and isinstance(node.func, ast.Attribute) and _is_os(node.func):
                flags = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                devnull = ast.unparse(node.args[0]) == "os.devnull" if node.args else False
                if flags & WRITE_FLAGS and not devnull:
                    found.append(f"{node.lineno}: os.open for writing")
                continue
            position = 0 if isinstance(node.func, ast.Attribute) and name == "open" else 1
            mode = _mode(node, position)
            if mode is None or set(mode) & set("wax+"):
                found.append(f"{node.lineno}: {name}() for writing (mode {mode!r})")
        elif isinstance(node.func, ast.Attribute):
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
            if name in PATH_METHODS or name in MODULE_CALLS.get(owner or "", ()):
                found.append(f"{node.lineno}: {ast.unparse(node.func)}()")
        elif name in BARE:
            found.append(f"{node.lineno}: {name}()")
    return found


def _is_os(func: ast.Attribute) -> bool:
    return isinstance(func.value, ast.Name) and func.value.id == "os"


def test_only_the_api_and_the_cli_write_files_or_parse_arguments() -> None:
    bad = {}
    for folder in PACKAGE:
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ALLOWED or rel in CACHES or rel.startswith(ALLOWED_PACKAGES):
                continue
            found = violations(ast.parse(path.read_text(), rel))
            if found:
                bad[rel] = found
    assert not bad, bad


def test_the_check_sees_each_kind_of_write() -> None:
    cases = {
        "import argparse": 1,
        "from argparse import ArgumentParser": 1,
        "open(p, 'w')": 1,
        "open(p, mode='ab')": 1,
        "open(p, m)": 1,  # a mode that is not a literal may write
        "open(p)": 0,
        "open(p, 'rb')": 0,
        "Path(p).open('x')": 1,
        "Path(p).open()": 0,
        "os.fdopen(fd, 'wb')": 1,
        "os.open(p, os.O_WRONLY | os.O_CREAT)": 1,
        "os.open(os.devnull, os.O_WRONLY)": 0,
        "os.open(p, os.O_RDONLY)": 0,
        "p.write_text(s)": 1,
        "tempfile.mkstemp(dir=d)": 1,
        "os.replace(a, b)": 1,
        "shutil.rmtree(d)": 1,
        "torch.save(m, p)": 1,
        "from tempfile import mkdtemp\nmkdtemp()": 1,
        "Path(p).mkdir(parents=True)": 1,
        "dataclasses.replace(x, a=1)": 0,
        "nodes.remove(n)": 0,
        "text.replace('a', 'b')": 0,
    }
    for source, count in cases.items():
        assert len(violations(ast.parse(source))) == count, source
