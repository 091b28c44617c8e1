"""A sweep driver killed with SIGKILL mid-run, then resumed, ends with every point exactly once."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
POINTS = 10
SWEEP = f"""\
name: kill
base: {HERE / "tiny.yaml"}
axes:
  params: {{width: [{", ".join(str(4 + i) for i in range(POINTS))}]}}
metrics: [params, macs, latency]
latency: {{warmup: 5, repeats: 100}}
objectives: {{params: min, latency_ms: min}}
"""


def _sweep(path: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "archgraph.cli", "sweep", str(path), "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _data_lines(table: Path) -> list[bytes]:
    if not table.exists():
        return []
    data = table.read_bytes()
    return data[: data.rfind(b"\n") + 1].split(b"\n")[1:-1]  # complete lines only


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, read from /proc (the pool's worker processes)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def test_sigkill_then_resume_gives_every_point_once(tmp_path: Path) -> None:
    path, out = tmp_path / "kill.yaml", tmp_path / "out"
    path.write_text(SWEEP)
    table = out / "results.csv"
    driver = _sweep(path, out, "--workers", "1")
    workers: list[int] = []
    deadline = time.monotonic() + 240
    while len(_data_lines(table)) < 2:
        assert driver.poll() is None, driver.communicate()
        assert time.monotonic() < deadline, "the sweep did not start"
        workers = _children(driver.pid) or workers
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)
    driver.communicate()
    kept = _data_lines(table)
    assert 2 <= len(kept) < POINTS  # killed mid-run
    for pid in workers:  # a worker notices its driver is gone and leaves
        for _ in range(100):
            if not _alive(pid):
                break
            time.sleep(0.1)
        assert not _alive(pid)

    resumed = _sweep(path, out, "--resume", "--workers", "1")
    stdout, stderr = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, stderr
    assert f"{POINTS} points ({POINTS - len(kept)} run now): {POINTS} ok" in stdout
    lines = _data_lines(table)
    assert lines[: len(kept)] == kept  # nothing written before the kill was lost or rewritten
    with table.open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["point"]) for r in rows) == list(range(POINTS))
    assert len({r["key"] for r in rows}) == POINTS
    assert {r["params.width"] for r in rows} == {str(4 + i) for i in range(POINTS)}
