"""`archgraph sweep FILE [--workers N] [--ray ADDRESS|auto] [--resume] [--out DIR]`."""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="a sweep file (docs/sweeps.md)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the points as Ray tasks: 'auto' (the running cluster, else a local Ray) "
        "or a cluster address",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in --out, skipping finished points",
    )
    p.add_argument("--out", metavar="DIR", help="output folder (default NAME-sweep/)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from archgraph.sweep.runner import REPORT, TABLE, run_sweep

    bar = Progress(
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True, highlight=False),
        transient=True,
    )
    task = bar.add_task("sweep", total=None)

    def progress(done: int, total: int, row: dict[str, Any] | None) -> None:
        # the bar starts with the first report, after the file is checked: a bad file's
        # error is all that is printed
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total)
        if row is not None and row.get("status") != "ok":
            bar.console.print(f"point {row['point']} failed:\n{row.get('error', '')}", markup=False)

    try:
        result = run_sweep(
            args.file,
            out=args.out,
            workers=args.workers,
            ray=args.ray,
            resume=args.resume,
            plugins=args.plugins,
            progress=progress,
        )
    finally:
        if bar.live.is_started:
            bar.stop()
    ok = sum(r["status"] == "ok" for r in result.rows)
    Console(highlight=False, soft_wrap=True).print(
        f"{len(result.rows)} points ({result.ran} run now): {ok} ok, {len(result.rows) - ok} failed, "
        f"{len(result.front)} on the Pareto front; wrote {result.out_dir / TABLE} and "
        f"{result.out_dir / REPORT}",
        markup=False,
    )
    return 0
