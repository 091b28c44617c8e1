"""examples/sweep_vovnet.yaml end to end on the local pool and on a real local Ray (started here,
not mocked): the same table apart from the timing columns, and the same emitted specs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import ray

from archgraph.sweep.metrics import TIMING_COLUMNS

EXAMPLE = Path(__file__).parents[2] / "examples" / "sweep_vovnet.yaml"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archgraph.cli", "sweep", str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        timeout=480,
        env=env,
    )


def _table(out: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (out / "results.csv").open() as f:
        reader = csv.DictReader(f)
        rows = sorted(reader, key=lambda r: int(r["point"]))
        return list(reader.fieldnames or []), rows


def _without_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


def test_pool_and_ray_give_the_same_table(tmp_path: Path) -> None:
    pool_out, ray_out = tmp_path / "pool", tmp_path / "ray"
    proc = _cli("--workers", "2", "--out", str(pool_out))
    assert proc.returncode == 0, proc.stderr
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        # --ray auto joins the running cluster: this test's (RAY_ADDRESS names it, so another
        # Ray on the machine cannot be picked instead)
        env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
        proc = _cli("--ray", "auto", "--out", str(ray_out), env=env)
    finally:
        ray.shutdown()
    assert proc.returncode == 0, proc.stderr
    assert "24 points (24 run now): 24 ok" in proc.stdout
    pool_columns, pool_rows = _table(pool_out)
    ray_columns, ray_rows = _table(ray_out)
    assert pool_columns == ray_columns
    assert {"latency_ms", "seconds"} <= set(pool_columns)
    assert [r["point"] for r in pool_rows] == [str(i) for i in range(24)]
    assert all(r["status"] == "ok" for r in pool_rows)
    assert _without_timing(pool_rows) == _without_timing(ray_rows)
    for row in pool_rows:
        assert (pool_out / row["spec"]).read_bytes() == (ray_out / row["spec"]).read_bytes()
    assert "Ray tasks" in (ray_out / "report.html").read_text()
    assert "local process pool, 2 worker(s)" in (pool_out / "report.html").read_text()
