"""Disjoint cores for measured points, across every process on the machine.

A point that measures latency claims `threads` of the cores this process may run on, by taking
an exclusive lock (fcntl.flock) on one file per core in a per-user folder of the temporary
directory, pins itself to them (os.sched_setaffinity) and runs torch with that many threads.
Claims are all or nothing: a process that cannot get enough free cores releases what it took and
waits. Pool workers and Ray tasks on one machine, and two sweeps running at once, therefore never
measure on the same core; the OS releases a dead process's locks. Other programs on the machine
are not held off. Where affinity is not available (macOS), one lock serializes measured points
machine-wide instead: they run one at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PINNED = "pinned to disjoint cores (one exclusive lock per core, os.sched_setaffinity)"
SERIAL = "one at a time (a machine-wide lock; this OS cannot pin processes to cores)"
POLL_S = 0.05


def method() -> str:
    return PINNED if hasattr(os, "sched_setaffinity") else SERIAL


def _lock_dir() -> Path:
    path = Path(tempfile.gettempdir()) / f"archgraph-sweep-cores-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _pin(cores: list[int]) -> None:
    """Pin every thread of this process (torch's worker threads too, which a process-wide call
    would miss: Linux affinity is per thread and inherited only by threads created later)."""
    tasks = Path("/proc/self/task")
    tids = [int(t) for t in os.listdir(tasks)] if tasks.is_dir() else [0]
    for tid in tids:
        with contextlib.suppress(ProcessLookupError):  # a thread that has just exited
            os.sched_setaffinity(tid, cores)


def _release(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)  # closing the descriptor drops its flock


@contextlib.contextmanager
def claim(threads: int) -> Iterator[list[int]]:
    """Hold `threads` cores to this process (pinned) for the duration; yields their numbers."""
    folder = _lock_dir()
    if not hasattr(os, "sched_setaffinity"):
        fd = None
        while fd is None:
            fd = _try_lock(folder / "all.lock")
            if fd is None:
                time.sleep(POLL_S)
        try:
            yield []
        finally:
            _release([fd])
        return
    allowed = sorted(os.sched_getaffinity(0))
    threads = min(threads, len(allowed))
    while True:
        taken: list[tuple[int, int]] = []
        for core in allowed:
            fd = _try_lock(folder / f"core-{core}.lock")
            if fd is not None:
                taken.append((core, fd))
                if len(taken) == threads:
                    break
        if len(taken) == threads:
            break
        _release([fd for _, fd in taken])
        time.sleep(POLL_S)
    cores = [core for core, _ in taken]
    _pin(cores)
    try:
        yield cores
    finally:
        _pin(allowed)
        _release([fd for _, fd in taken])
