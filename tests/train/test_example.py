"""examples/sparse_training.py in its fast mode: the table has every method at both sparsities,
with the sparsity measured on the trained weights as requested, and the plot is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sparse_training.py"


def test_sparse_training_example_fast(tmp_path: Path) -> None:
    plot = tmp_path / "plot.png"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--fast", "--width", "4", "--out", str(plot)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == [
        "method",
        "target sparsity",
        "measured sparsity",
        "held-out accuracy",
        "MACs/sample",
        "MACs vs dense",
    ]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [(r[0], r[1]) for r in rows] == [("dense", "0.00")] + [
        (m, s) for s in ("0.80", "0.90") for m in ("random ERK (static)", "GMP", "GraNet")
    ]
    for r in rows:
        assert float(r[2]) == pytest.approx(float(r[1]), abs=0.005)
        assert 0.0 <= float(r[3]) <= 1.0
        assert int(r[4].replace(",", "")) > 0
    assert rows[0][5] == "1.000x" and all(float(r[5].rstrip("x")) < 0.5 for r in rows[1:])
    assert plot.stat().st_size > 0
