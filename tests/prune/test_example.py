"""examples/gradual_pruning.py runs as written (with fewer steps) and saves its plot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gradual_pruning.py"


def test_gradual_pruning_example(tmp_path) -> None:
    out = tmp_path / "plot.png"
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--steps",
            "20",
            "--frequency",
            "2",
            "--batch",
            "8",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    match = re.search(r"target sparsity ([0-9.]+), measured ([0-9.]+)", proc.stdout)
    assert match, proc.stdout
    target, measured = float(match.group(1)), float(match.group(2))
    assert target == 0.8 and abs(measured - target) < 0.01
