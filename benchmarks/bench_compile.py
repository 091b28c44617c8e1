"""Spec -> GraphModule time for every zoo spec, and the README's main command end to end.

The foundation and zoo issues ask for spec -> module under 1 s and for the README's
`archgraph compile resnet50 --profile` under 60 s. Tests never assert on time (a busy CI machine
would make them flaky), so the figures are measured here: load + compile (-O0, deterministic
weights) after one warm-up call, median of --repeats, and the CLI command as a subprocess.

    bash scripts/dev python benchmarks/bench_compile.py [--repeats 5] [--no-cli]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time

import torch

import archgraph


def compile_seconds(name: str, repeats: int) -> list[float]:
    archgraph.compile(archgraph.load(name))  # warm-up: one-off imports and caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        archgraph.compile(archgraph.load(name))
        times.append(time.perf_counter() - start)
    return times


def cli_seconds() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "archgraph", "compile", "resnet50", "--profile"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-cli", action="store_true", help="skip the end-to-end CLI timing")
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )
    print("| spec | load + compile median (s) | max (s) | under 1 s |")
    print("|---|---|---|---|")
    for name in archgraph.zoo():
        times = compile_seconds(name, args.repeats)
        median = statistics.median(times)
        print(f"| {name} | {median:.3f} | {max(times):.3f} | {'yes' if median < 1 else 'NO'} |")
    if not args.no_cli:
        print(f"\n`archgraph compile resnet50 --profile` end to end: {cli_seconds():.1f} s")


if __name__ == "__main__":
    main()
