"""The long spec-fuzzing run (issue 8): N hypothesis-mutated specs (default 50,000), each checked by
the CI fuzzer's oracle (tests/spec/fuzzing.py: success with a faithful round trip, or one located
SpecError), each under a time limit (5 s) and a memory limit (1 GiB above the worker's baseline).

    nice -n 19 bash scripts/dev python benchmarks/fuzz_long.py --cases 50000 --workers 2

Cases are generated in the parent (hypothesis, randomized, in chunks with distinct seeds) and run
in worker processes forked after archgraph is imported. In each worker:
  - memory: resource.setrlimit(RLIMIT_AS) to the worker's address space after import + 1 GiB, so
    a case that allocates more gets a MemoryError (reported as over the limit);
  - time: a 5 s CPU-time interval timer (ITIMER_PROF: the case's own user + system time, so a
    busy shared machine or `nice` does not count against it) raises in the case (reported as over
    the limit); wall time is reported too; a case that has not answered after 5 s + a grace period
    of wall time (stuck in C code, or starved) has its worker killed and replaced by the parent;
  - peak RSS per case: /proc/self/clear_refs resets VmHWM before each case, read after it.
Reported: outcomes, other exceptions (anything that is not success or a located SpecError: a bug;
the first few saved under --failures), max and p99 time, max RSS and max growth over baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import sys
import time
import traceback
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.spec.fuzzing import check_case, fuzz_cases  # noqa: E402

TIME_LIMIT_S = 5.0
MEMORY_LIMIT = 1 << 30
GRACE_S = 115.0  # wall seconds past the limit after which a silent worker is killed (nice + load)


class OverTime(BaseException):
    """Not an Exception: the code under test must not catch it and report it as its own error."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise OverTime()


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) to the current RSS


def worker(conn: Connection) -> None:
    baseline_rss = _status_kib("VmRSS") * 1024
    address_space = _status_kib("VmSize") * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address_space + MEMORY_LIMIT, resource.RLIM_INFINITY))
    signal.signal(signal.SIGPROF, _on_alarm)
    conn.send(("ready", baseline_rss))
    while True:
        job = conn.recv()
        if job is None:
            return
        index, text = job
        _reset_peak()
        start, cpu_start = time.perf_counter(), time.process_time()
        signal.setitimer(signal.ITIMER_PROF, TIME_LIMIT_S)
        try:
            outcome, detail = check_case(text), ""
        except OverTime:
            outcome, detail = "over_time", ""
        except MemoryError:
            outcome, detail = "over_memory", ""
        except BaseException as e:  # noqa: BLE001 - every other exception is what we look for
            outcome = "bug"
            detail = f"{type(e).__name__}: {str(e)[:300]}\n{traceback.format_exc()[-3000:]}"
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        cpu, wall = time.process_time() - cpu_start, time.perf_counter() - start
        conn.send((index, outcome, detail, cpu, wall, _status_kib("VmHWM") * 1024))


def generate(chunk: int, n: int) -> list[str]:
    """n distinct cases from the CI fuzzer's strategies, randomized by the chunk's seed."""
    out: list[str] = []

    @settings(
        max_examples=n,
        database=None,
        derandomize=False,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @seed(chunk)
    @given(fuzz_cases())
    def collect(text: str) -> None:
        out.append(text)

    collect()
    return out


class Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker, args=(child,), daemon=True)
        self.proc.start()
        _, self.baseline = self.conn.recv()
        self.job: tuple[int, str] | None = None
        self.started = 0.0

    def send(self, job: tuple[int, str]) -> None:
        self.job, self.started = job, time.perf_counter()
        self.conn.send(job)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()


def run(
    cases: int,
    workers: int,
    chunk_size: int,
    first_seed: int,
    failures: Path,
    progress: Path | None,
) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    pool = [Worker(ctx) for _ in range(workers)]
    stats = Stats(baseline=max(w.baseline for w in pool))
    chunk, summary = first_seed, dict[str, Any]()
    failures.mkdir(parents=True, exist_ok=True)
    while stats.done < cases:
        queue = list(
            enumerate(generate(chunk, min(chunk_size, cases - stats.done)), start=stats.done)
        )
        chunk += 1
        pending = len(queue)
        for w in pool:
            if queue:
                w.send(queue.pop())
        while pending:
            ready = mp.connection.wait([w.conn for w in pool if w.job is not None], timeout=1.0)
            for k, w in enumerate(pool):
                if w.job is None:
                    continue
                if w.conn in ready:
                    index, outcome, detail, cpu, wall, rss = w.conn.recv()
                    text = w.job[1]
                elif time.perf_counter() - w.started > TIME_LIMIT_S + GRACE_S:
                    (index, text), outcome, detail, rss = w.job, "hung", "killed by the parent", 0
                    cpu = wall = time.perf_counter() - w.started
                    w.kill()
                    pool[k] = w = Worker(ctx)
                else:
                    continue
                w.job = None
                pending -= 1
                stats.add(
                    outcome,
                    detail,
                    cpu,
                    wall,
                    rss,
                    rss - w.baseline if rss else 0,
                    text,
                    index,
                    failures,
                )
                if queue:
                    w.send(queue.pop())
        summary = stats.summary()
        print(
            f"{stats.done}/{cases} cases, {summary['cases_per_s']}/s, {summary['outcomes']}",
            flush=True,
        )
        if progress is not None:
            progress.write_text(
                json.dumps(summary, indent=1) + "\n"
            )  # partial results survive a stop
    for w in pool:
        w.conn.send(None)
        w.proc.join(timeout=10)
    return summary


class Stats:
    def __init__(self, baseline: int) -> None:
        self.baseline = baseline
        self.started = time.perf_counter()
        self.outcomes: Counter[str] = Counter()
        self.bugs: Counter[str] = Counter()
        self.cpu: list[float] = []
        self.max_wall = 0.0
        self.max_rss = self.max_growth = 0
        self.slowest = (0.0, "")

    @property
    def done(self) -> int:
        return len(self.cpu)

    def add(
        self,
        outcome: str,
        detail: str,
        cpu: float,
        wall: float,
        rss: int,
        growth: int,
        text: str,
        index: int,
        failures: Path,
    ) -> None:
        self.outcomes[outcome] += 1
        self.cpu.append(cpu)
        self.max_wall = max(self.max_wall, wall)
        self.max_rss, self.max_growth = max(self.max_rss, rss), max(self.max_growth, growth)
        if cpu > self.slowest[0]:
            self.slowest = (cpu, text[:120])
        if outcome in ("ok", "error"):
            return
        key = detail.split("\n", 1)[0][:160] or outcome
        self.bugs[key] += 1
        if self.bugs[key] == 1 and len(self.bugs) <= 50:
            (failures / f"case_{index}.yaml").write_text(text, errors="surrogateescape")
            (failures / f"case_{index}.txt").write_text(f"{outcome}\n{detail}\n")

    def summary(self) -> dict[str, Any]:
        times = sorted(self.cpu)
        wall = time.perf_counter() - self.started
        return {
            "cases": self.done,
            "outcomes": dict(self.outcomes),
            "other_exceptions": dict(self.bugs),
            "wall_s": round(wall, 1),
            "cases_per_s": round(self.done / wall, 1),
            "max_case_cpu_s": round(times[-1], 3),
            "p99_case_cpu_s": round(times[int(0.99 * (len(times) - 1))], 3),
            "median_case_cpu_s": round(times[len(times) // 2], 4),
            "max_case_wall_s": round(self.max_wall, 3),
            "slowest_case": self.slowest[1],
            "baseline_rss_mib": round(self.baseline / 2**20, 1),
            "max_rss_mib": round(self.max_rss / 2**20, 1),
            "max_rss_growth_mib": round(self.max_growth / 2**20, 1),
            "limits": {"cpu_time_s": TIME_LIMIT_S, "memory_mib_above_baseline": MEMORY_LIMIT >> 20},
        }


def machine() -> str:
    import torch

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--chunk", type=int, default=1000, help="cases generated per hypothesis seed"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--failures", type=Path, default=Path("fuzz_failures"), help="where failing cases go"
    )
    parser.add_argument("--json", type=Path, help="write the summary as JSON (after every chunk)")
    args = parser.parse_args()
    summary = {
        "machine": machine(),
        **run(args.cases, args.workers, args.chunk, args.seed, args.failures, args.json),
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
