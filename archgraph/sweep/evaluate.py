"""One point, run where an engine puts it (a pool worker, a Ray task): load the base spec with the
point's parameters, apply its rewrites and prunes, write the result as a spec, compile it at its
-O level and take the metrics. Any failure becomes the point's recorded error; it never escapes.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archgraph.errors import ArchgraphError
from archgraph.sweep.fileformat import Settings

_loaded_plugins: set[str] = set()  # per process: a worker runs many points


@dataclass(frozen=True)
class Task:
    """Everything a worker needs for one point (picklable, no paths relative to the driver)."""

    index: int
    key: str
    settings: Settings
    base: str  # zoo name or absolute path
    batch: int
    threads: int
    metrics: tuple[str, ...]
    warmup: int
    repeats: int
    out_dir: str  # absolute
    spec_path: str  # relative to out_dir
    plugins: tuple[str, ...] = ()


def transform(graph: Any, settings: Settings) -> Any:
    """The point's rewrites, then its prunes, in order (as `archgraph compile --rewrite --prune`)."""
    from archgraph.passes.prune.options import parse_prune
    from archgraph.passes.prune.sparsity import prune_weights
    from archgraph.passes.prune.structured import prune_channels
    from archgraph.passes.rewrites import rewrite

    for name in settings.rewrite:
        graph, _ = rewrite(graph, name)
    for text in settings.prune:
        option = parse_prune(text)
        if option.kind == "channels":
            graph, _ = prune_channels(graph, option.ratio, **option.options)
        else:
            graph, _, _ = prune_weights(graph, option.ratio, **option.options)
    return graph


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _measure(task: Task, graph: Any) -> dict[str, Any]:
    import archgraph
    from archgraph.profile import node_costs, totals, uncounted
    from archgraph.profile.measure import example_inputs, time_module
    from archgraph.profile.memory import liveness_peak, measured_peak
    from archgraph.profile.phases import compiled_graph

    module = archgraph.compile(graph, task.settings.opt_level).eval()
    ir = compiled_graph(module, graph)
    costs = node_costs(ir)
    t = totals(costs)
    row: dict[str, Any] = {
        "params": t.params,
        "macs": t.macs,
        "flops": t.flops,
        "uncounted": " ".join(c.id for c in uncounted(costs)),
        "memory_access_bytes": t.memory_access_bytes,
        "conv_mac": t.conv_mac,
        "peak_bytes": liveness_peak(ir),
    }
    if "synflow" in task.metrics:
        from archgraph.sweep.synflow import synflow

        row["synflow"] = synflow(graph)
    inputs = example_inputs(graph)
    if "latency" in task.metrics:
        timing = time_module(module, inputs, warmup=task.warmup, repeats=task.repeats)
        row.update(
            latency_ms=timing.median_ms,
            latency_p10_ms=timing.p10_ms,
            latency_p90_ms=timing.p90_ms,
        )
    if "peak_memory_measured" in task.metrics:
        row["peak_measured_bytes"] = measured_peak(module, inputs)
    return row


def _evaluate(task: Task) -> dict[str, Any]:
    import archgraph
    from archgraph.outputs import write_file as write_atomic
    from archgraph.spec.emit import graph_to_yaml

    plugins = [p for p in task.plugins if p not in _loaded_plugins]
    if plugins:
        from archgraph.plugins import load_plugins

        load_plugins(plugins)
        _loaded_plugins.update(plugins)
    graph = archgraph.load(task.base, batch=task.batch, **task.settings.params)
    graph = transform(graph, task.settings)
    write_atomic(Path(task.out_dir) / task.spec_path, graph_to_yaml(graph))
    return {"spec": task.spec_path, **_measure(task, graph)}


def run_task(task: Task) -> dict[str, Any]:
    """The point's row: status, metric values (or its error) and its wall time in seconds."""
    from archgraph.sweep.cores import claim
    from archgraph.sweep.metrics import measured

    start = time.perf_counter()
    cores = claim(task.threads) if measured(task.metrics) else contextlib.nullcontext()
    try:
        with cores, _threads(task.threads):
            row = {"status": "ok", **_evaluate(task)}
    except ArchgraphError as e:
        row = {"status": "error", "error": str(e)}
    except Exception as e:  # a bug, not the user's: recorded with where it happened
        where = traceback.extract_tb(e.__traceback__)[-1]
        row = {
            "status": "error",
            "error": f"internal error: {type(e).__name__}: {e} "
            f"({os.path.basename(where.filename)}:{where.lineno})",
        }
    row["seconds"] = time.perf_counter() - start
    return row
