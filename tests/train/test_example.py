"""examples/sparse_training.py in its fast mode over two seeds: the table has every method at both
sparsities, with the sparsity measured on the trained weights and each seed's accuracy, the
ordering table compares the methods seed by seed, and the plot is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sparse_training.py"


def test_sparse_training_example_fast(tmp_path: Path) -> None:
    plot = tmp_path / "plot.png"
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--fast",
            "--width",
            "4",
            "--seeds",
            "2",
            "--out",
            str(plot),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("|")]
    split = lines.index(next(line for line in lines if line.startswith("| ordering")))
    lines, ordering = lines[:split], lines[split:]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == [
        "method",
        "target sparsity",
        "measured sparsity",
        "held-out accuracy",
        "accuracy per seed",
        "MACs/sample",
        "MACs vs dense",
    ]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [(r[0], r[1]) for r in rows] == [("dense", "0.00")] + [
        (m, s) for s in ("0.80", "0.90") for m in ("random ERK (static)", "GMP", "GraNet")
    ]
    for r in rows:
        assert float(r[2]) == pytest.approx(float(r[1]), abs=0.005)
        per_seed = [float(a) for a in r[4].split()]
        assert len(per_seed) == 2 and all(0.0 <= a <= 1.0 for a in per_seed)
        assert float(r[3]) == pytest.approx(sum(per_seed) / 2, abs=1e-4)
        assert int(r[5].replace(",", "")) > 0
    assert rows[0][6] == "1.000x" and all(float(r[6].rstrip("x")) < 0.5 for r in rows[1:])
    checks = [[c.strip() for c in line.strip("|").split("|")] for line in ordering[2:]]
    assert [(c[0], c[1]) for c in checks] == [
        ("GMP >= random ERK (static)", "0.80"),
        ("GMP >= random ERK (static)", "0.90"),
        ("GraNet >= GMP", "0.80"),
        ("GraNet >= GMP", "0.90"),
    ]
    assert all(c[2].endswith("of 2") for c in checks)
    assert plot.stat().st_size > 0
