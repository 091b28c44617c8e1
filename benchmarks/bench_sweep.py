"""Sweep wall time at 1 worker vs 2 workers (issue 15): examples/sweep_vovnet.yaml, 24 points.

Each round runs the whole sweep once per worker count, alternating which goes first, into fresh
output folders (so nothing is resumed), and times `run_sweep` end to end: worker start-up,
every point, the table and the report. Reported: the median wall time per worker count, the
ratio, and the Pareto front of the last 2-worker run (its points and the two plotted
objectives), for describing the report's picture. Latency points are pinned to disjoint cores
(archgraph/sweep/cores.py), so 2 workers need 2 free cores to overlap: run on a quiet machine.

    bash scripts/dev python benchmarks/bench_sweep.py [--rounds 3] [--sweep FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from archgraph.sweep import load_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]


def timed(sweep: Path, workers: int, folder: Path) -> tuple[float, object]:
    start = time.perf_counter()
    result = run_sweep(sweep, out=folder, workers=workers)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sweep", default=str(ROOT / "examples" / "sweep_vovnet.yaml"))
    args = parser.parse_args()
    sweep = Path(args.sweep)
    spec = load_sweep(sweep)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{platform.processor() or platform.machine()}, {cores} cores usable, torch {torch.__version__}"
    )
    print(f"sweep {spec.name}: base {spec.base}, {spec.threads} thread(s) per point")
    seconds: dict[int, list[float]] = {1: [], 2: []}
    last = None
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                s, result = timed(sweep, workers, Path(tmp) / f"r{r}-w{workers}")
                seconds[workers].append(s)
                print(f"round {r}: {workers} worker(s) {s:7.1f} s")
                if workers == 2:
                    last = result
    one, two = statistics.median(seconds[1]), statistics.median(seconds[2])
    print(f"\n{'workers':>8} {'median s':>9}\n{1:>8} {one:9.1f}\n{2:>8} {two:9.1f}")
    print(f"speed-up at 2 workers: {one / two:.2f}x")
    if last is not None:
        x, y = list(spec.objectives)[:2]
        print(f"\nPareto front ({', '.join(f'{c} {d}' for c, d in spec.objectives.items())}):")
        for i in last.front:
            row = last.rows[i]
            settings = ", ".join(
                f"{k}={v or '-'}" for k, v in row.items() if k.startswith("params.") or k == "prune"
            )
            print(f"  point {row['point']:>2}: {x}={row[x]:<22} {y}={row[y]:<22} {settings}")


if __name__ == "__main__":
    main()
