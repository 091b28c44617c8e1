"""Measured points claim disjoint cores, across processes, and pin every thread to them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from archgraph.sweep import cores

ALLOWED = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
CHILD = (  # started before the parent pins itself (children inherit affinity), claims on cue
    "import os, sys; from archgraph.sweep.cores import claim\n"
    "sys.stdin.readline()\n"
    "with claim(1) as c: print(c[0], sorted(os.sched_getaffinity(0)))"
)


def _affinity_of_thread(tid: int) -> set[int]:
    return os.sched_getaffinity(tid)


@pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two usable cores and CPU affinity (Linux)")
def test_another_process_gets_another_core_and_every_thread_is_pinned() -> None:
    ready, release = threading.Event(), threading.Event()
    tids: list[int] = []

    def idle() -> None:  # a thread that exists before the claim, like torch's workers
        tids.append(threading.get_native_id())
        ready.set()
        release.wait()

    helper = threading.Thread(target=idle)
    helper.start()
    ready.wait()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with cores.claim(1) as mine:
            assert len(mine) == 1
            assert os.sched_getaffinity(0) == set(mine)
            assert _affinity_of_thread(tids[0]) == set(mine)
            stdout, stderr = child.communicate("go\n", timeout=120)
            assert child.returncode == 0, stderr
            theirs, pinned = stdout.split(" ", 1)
            assert int(theirs) in ALLOWED and int(theirs) != mine[0]
            assert pinned.strip() == f"[{theirs}]"
        assert sorted(os.sched_getaffinity(0)) == ALLOWED
        assert sorted(_affinity_of_thread(tids[0])) == ALLOWED
    finally:
        release.set()
        helper.join()
        if child.poll() is None:
            child.kill()
            child.wait()


def test_the_method_is_stated() -> None:
    assert cores.method() == (cores.PINNED if ALLOWED else cores.SERIAL)
