"""The `archgraph` command as a user runs it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import archgraph


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archgraph.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_zoo_lists_every_spec_with_a_description() -> None:
    proc = run("zoo")
    assert proc.returncode == 0
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.strip()}
    assert set(lines) == set(archgraph.zoo())
    assert all(len(line.split()) > 2 for line in lines.values())  # a name and a description


def test_validate_summarizes() -> None:
    proc = run("validate", "resnet18", "--set", "num_classes=10")
    assert proc.returncode == 0, proc.stderr
    assert (
        "ok: resnet18" in proc.stdout
        and "params 11,181,642" in proc.stdout
        and "fc [1, 10]" in proc.stdout
    )


def test_compile_profile_json_and_code(tmp_path: Path) -> None:
    out, code = tmp_path / "p.json", tmp_path / "model.py"
    proc = run(
        "compile",
        "resnet18",
        "--profile",
        "--batch",
        "2",
        "--json",
        str(out),
        "--emit-code",
        str(code),
        "--repeats",
        "3",
        "--warmup",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    assert "layer4.1.conv2" in proc.stdout and "total" in proc.stdout
    data = json.loads(out.read_text())
    assert data["params"] == 11_689_512 and data["batch"] == 2
    assert data["macs"] == sum(n["macs"] for n in data["nodes"])
    assert data["flops"] >= 2 * data["macs"] and data["latency_ms"] > 0
    ids = [n["id"] for n in data["nodes"]]
    assert ids[0] == "conv1" and ids[-1] == "fc" and len(ids) == len(archgraph.load("resnet18")) - 1
    assert all(
        set(n) >= {"id", "op", "params", "macs", "flops", "latency_ms"} for n in data["nodes"]
    )
    assert abs(sum(n["share"] for n in data["nodes"]) - 1.0) < 1e-6
    source = code.read_text()
    ast.parse(source)
    assert "def forward(self, x):" in source and "self.conv1(x)" in source


def test_unknown_spec_name_exits_2_with_a_hint() -> None:
    proc = run("validate", "resnet5O")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no spec file or zoo spec named 'resnet5O'" in proc.stderr and "resnet50" in proc.stderr


def test_compile_compiles_once_for_every_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One orchestration path: the profile, the code and the kernels come from one compilation
    (the -O0 compile of --compare is the only other, and is asked for)."""
    import archgraph.profile.phases
    from archgraph.cli import main

    levels: list[int] = []
    compile_graph = archgraph.profile.phases.compile_graph  # what the profiler times

    def counting(graph: archgraph.Graph, opt_level: int = 0, *args: Any, **kw: Any) -> Any:
        levels.append(opt_level)
        return compile_graph(graph, opt_level, *args, **kw)

    monkeypatch.setattr(archgraph.profile.phases, "compile_graph", counting)
    outputs = ["--json", "p.json", "--emit-code", "m.py", "--emit-kernels", "k", "--dot", "g.dot"]
    args = ["compile", "resnet18", "-O2", "--repeats", "1", "--warmup", "0"]
    monkeypatch.chdir(tmp_path)
    assert main([*args, *outputs]) == 0
    assert levels == [2]
    assert main([*args, "--emit-code", "m2.py", "--compare", "-O0"]) == 0
    assert levels == [2, 2, 0]
    assert (tmp_path / "m.py").read_text() == (tmp_path / "m2.py").read_text()
