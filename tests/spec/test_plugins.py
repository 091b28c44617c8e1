"""Custom ops and blocks come only from plugins named by the person running archgraph
(`--plugin MODULE`, archgraph.plugins.load_plugin), never from the spec itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "plugin_ops.py"
SPEC = ROOT / "examples" / "plugin_spec.yaml"


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archgraph.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_spec_needs_the_plugin() -> None:
    proc = cli("validate", str(SPEC))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "unknown block 'conv_swish'" in proc.stderr and "--plugin" in proc.stderr


def test_plugin_file_on_the_command_line(tmp_path: Path) -> None:
    code = tmp_path / "model.py"
    proc = cli("compile", str(SPEC), "--plugin", str(PLUGIN), "--emit-code", str(code))
    assert proc.returncode == 0, proc.stderr
    # by hand: stem 3*16*9 + 2*16 (bn); stage.0 16*32*9 + 2*32; stage.1 32*48*9 + 2*48; fc 48*10 + 10
    params = 3 * 16 * 9 + 32 + 16 * 32 * 9 + 64 + 32 * 48 * 9 + 96 + 48 * 10 + 10
    assert f"params {params:,}" in proc.stdout
    source = code.read_text()
    assert "swish_beta" in source and "beta = 1.5" in source


def test_plugin_module_name_from_the_current_directory(tmp_path: Path) -> None:
    (tmp_path / "my_ops.py").write_text(PLUGIN.read_text())
    proc = cli("validate", str(SPEC), "--plugin", "my_ops", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "ok: plugin_demo" in proc.stdout


def test_plugin_op_computes_what_it_says() -> None:
    """The compiled spec's swish_beta matches x * sigmoid(beta * x) written here."""
    script = f"""
import torch, archgraph
from archgraph.plugins import load_plugin
load_plugin({str(PLUGIN)!r})
b = archgraph.Builder("t")
x = b.input("x", [5])
b.output(b.node("swish_beta", x, name="s", beta=2.0))
m = archgraph.compile(b.build())
t = torch.linspace(-3, 3, 10).reshape(2, 5)
print(float((m(t) - t * torch.sigmoid(2.0 * t)).abs().max()))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) < 1e-6
    assert torch.sigmoid(torch.tensor(0.0)) == 0.5  # the reference formula's building block


def test_missing_and_broken_plugins_are_located_errors(tmp_path: Path) -> None:
    proc = cli("validate", "resnet18", "--plugin", "no_such_plugin_module")
    assert proc.returncode == 2 and "no plugin module named 'no_such_plugin_module'" in proc.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("import archgraph\n\nraise RuntimeError('boom')\n")
    proc = cli("validate", "resnet18", "--plugin", str(broken))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{broken}:3: error: plugin" in proc.stderr and "RuntimeError: boom" in proc.stderr
    proc = cli("zoo", "--plugin", "os.path;rm")
    assert proc.returncode == 2 and "is not a module name or a .py file" in proc.stderr


def test_a_spec_cannot_load_code(tmp_path: Path) -> None:
    """Tags that would construct Python objects are rejected before anything runs."""
    marker = tmp_path / "ran"
    spec = tmp_path / "evil.yaml"
    spec.write_text(
        "name: evil\ninputs: {x: [3, 8, 8]}\n"
        f"params: {{p: !!python/object/apply:os.system ['touch {marker}']}}\n"
        "nodes: {a: {op: relu, in: x}}\n"
    )
    proc = cli("validate", str(spec))
    assert proc.returncode == 2 and f"{spec}:3:" in proc.stderr and "is not allowed" in proc.stderr
    assert not marker.exists()
