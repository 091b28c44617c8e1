"""The default engine: a local pool of worker processes (spawn start method, so every worker
begins from a fresh interpreter rather than a fork of a driver that may hold threads)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from archgraph.errors import ArchgraphError
from archgraph.sweep.evaluate import Task, run_task

Done = Callable[[Task, dict[str, Any]], None]


def _exit_with(parent: int) -> None:
    """Worker initializer: leave when the driver is gone (a killed driver leaves no workers)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class PoolEngine:
    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ArchgraphError("--workers must be at least 1", found=str(workers))
        self.workers = workers

    def describe(self) -> str:
        return f"local process pool, {self.workers} worker(s) (spawn)"

    def run(self, tasks: Sequence[Task], done: Done) -> None:
        """Run every task; call `done` in the driver as each finishes, in finishing order."""
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(tasks)) or 1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with,
            initargs=(os.getpid(),),
        )
        try:
            futures = {pool.submit(run_task, t): t for t in tasks}
            for future in as_completed(futures):
                try:
                    row = future.result()
                except BrokenProcessPool:
                    raise ArchgraphError(
                        "a worker process died (killed, or crashed outside Python)",
                        hint="the finished points are saved; run again with --resume for the rest",
                    ) from None
                done(futures[future], row)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
