"""The examples users copy from must run as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_custom_network_example() -> None:
    proc = run(str(EXAMPLES / "custom_network.py"))
    assert proc.returncode == 0, proc.stderr
    assert "logits (4, 10)" in proc.stdout


def test_reference_weights_example() -> None:
    proc = run(str(EXAMPLES / "load_reference_weights.py"))
    assert proc.returncode == 0, proc.stderr
    assert "loaded 320 tensors strictly" in proc.stdout
    assert float(proc.stdout.split("=")[-1]) <= 1e-4


def test_custom_yaml_block_example() -> None:
    proc = run(
        "-m",
        "archgraph.cli",
        "compile",
        str(EXAMPLES / "custom_block.yaml"),
        "--profile",
        "--repeats",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    # by hand: stem 3*16*9+16 = 448; per unit 2*(16*16*9) + 2*32 (bn) + (16*4+4) + (4*16+16) = 4820;
    # fc 16*10+10 = 170; 448 + 2*4820 + 170 = 10,258
    assert "units.1.fc2" in proc.stdout and "10,258" in proc.stdout
