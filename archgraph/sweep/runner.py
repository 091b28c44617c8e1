"""The driver: check the sweep file, take up the output folder, hand the unfinished points to an
engine, append each result as it arrives, then write the report.

Output folder (default `<name>-sweep/` in the working directory):
  results.csv   one line per finished point (table.py), in finishing order
  specs/        each point's architecture as a spec (archgraph.spec.emit), linked from the report
  report.html   the Pareto front and the sortable table (report.py)
  .lock         held while a driver writes the folder: two drivers never share it
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archgraph.errors import ArchgraphError, Loc
from archgraph.sweep import cores
from archgraph.sweep.evaluate import Task
from archgraph.sweep.fileformat import SweepFile, load_sweep
from archgraph.sweep.metrics import measured, metric_columns
from archgraph.sweep.pareto import pareto_front
from archgraph.sweep.report import ReportInput, render
from archgraph.sweep.space import Point, expand, setting_cell, setting_columns, settings_json
from archgraph.sweep.table import ResultsTable

Progress = Callable[[int, int, dict[str, Any] | None], None]  # (finished, total, the new row)
TABLE, REPORT, SPECS = "results.csv", "report.html", "specs"


@dataclass(frozen=True)
class SweepResult:
    out_dir: Path
    rows: list[dict[str, str]]  # every finished point, in point order
    front: list[int]  # indices into rows
    ran: int  # points run by this call (the others were finished already)


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    fd = os.open(folder / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchgraphError(
                "another sweep is writing this output folder",
                loc=Loc(str(folder)),
                hint="wait for it, or give another --out",
            ) from None
        yield
    finally:
        os.close(fd)


def columns(sweep: SweepFile) -> list[str]:
    return [
        "point",
        "key",
        "status",
        *setting_columns(sweep),
        *metric_columns(sweep.metrics),
        "seconds",
        "spec",
        "error",
    ]


def _plugin_path(name: str) -> str:
    """Plugin files by absolute path: workers (Ray's especially) run in other directories."""
    if name.endswith(".py") or "/" in name or "\\" in name:
        return str(Path(name).resolve())
    return name


def _task(sweep: SweepFile, point: Point, out_dir: Path, plugins: Sequence[str]) -> Task:
    return Task(
        index=point.index,
        key=point.key,
        settings=point.settings,
        base=sweep.base,
        batch=sweep.batch,
        threads=sweep.threads,
        metrics=sweep.metrics,
        warmup=sweep.warmup,
        repeats=sweep.repeats,
        out_dir=str(out_dir.resolve()),
        spec_path=f"{SPECS}/{point.index:04d}-{point.key}.yaml",
        plugins=tuple(_plugin_path(p) for p in plugins),
    )


def _notes(sweep: SweepFile, engine: str) -> list[str]:
    notes = [f"engine: {engine}"]
    if measured(sweep.metrics):
        notes.append(
            f"measured points ran {cores.method()}, {sweep.threads} thread(s) each, at batch "
            f"{sweep.batch}; latency is the median of {sweep.repeats} calls after {sweep.warmup} "
            "warm-up calls; other programs on the machine were not held off"
        )
    if "synflow" in sweep.metrics:
        notes.append(
            "synflow is a zero-cost accuracy proxy (log10 SynFlow score at initialization, "
            "Tanaka et al. 2020), not a trained accuracy"
        )
    return notes


def run_sweep(
    path: str | Path,
    *,
    out: str | Path | None = None,
    workers: int = 1,
    ray: str | None = None,
    resume: bool = False,
    plugins: Sequence[str] = (),
    progress: Progress | None = None,
) -> SweepResult:
    """Run the sweep file at `path` (see archgraph/sweep/fileformat.py) and write its outputs."""
    from archgraph.outputs import write_file as write_atomic

    sweep = load_sweep(path)
    points = expand(sweep)
    if ray is not None:
        from archgraph.sweep.ray_engine import RayEngine

        engine: Any = RayEngine(ray, sweep.threads)
    else:
        from archgraph.sweep.pool import PoolEngine

        engine = PoolEngine(workers)
    out_dir = Path(out) if out is not None else Path(f"{sweep.name}-sweep")
    (out_dir / SPECS).mkdir(parents=True, exist_ok=True)
    by_key = {p.key: p for p in points}
    with _exclusive(out_dir):
        table = ResultsTable(out_dir / TABLE, columns(sweep))
        finished = {r["key"] for r in table.open(resume)}
        stale = finished - set(by_key)
        if stale:
            raise ArchgraphError(
                "the results table holds points this sweep file does not have",
                loc=Loc(str(out_dir / TABLE)),
                found=f"{len(stale)} point(s), e.g. key {sorted(stale)[0]}",
                hint="the sweep file changed since; give another --out",
            )
        todo = [p for p in points if p.key not in finished]
        count = len(finished)
        if progress:
            progress(count, len(points), None)
        setting_names = setting_columns(sweep)

        def done(task: Task, row: dict[str, Any]) -> None:
            nonlocal count
            settings = by_key[task.key].settings
            full = {"point": task.index, "key": task.key, **row}
            full.update({c: setting_cell(settings, c) for c in setting_names})
            table.append(full)
            count += 1
            if progress:
                progress(count, len(points), full)

        if todo:
            engine.run([_task(sweep, p, out_dir, plugins) for p in todo], done)
        rows = sorted(table.read(), key=lambda r: int(r["point"]))
        front = pareto_front(rows, sweep.objectives)
        data = ReportInput(
            name=sweep.name,
            description=sweep.description,
            base=sweep.base,
            fixed=settings_json(sweep.fixed),
            settings=setting_names,
            metrics=metric_columns(sweep.metrics),
            objectives=sweep.objectives,
            rows=rows,
            front=front,
            notes=_notes(sweep, engine.describe()),
        )
        write_atomic(out_dir / REPORT, render(data))
    return SweepResult(out_dir, rows, front, len(todo))
