"""CPU training step side by side: archgraph -O2 (mode="train") against eager PyTorch (the
torchvision model) and torch.compile (default mode), fp32, 2 threads, batches 8 and 32.

A step is forward, cross-entropy loss, backward and an SGD step (momentum 0.9). One process;
every contender has its own copy of the same weights (the torchvision model's, randomized with
a seed) and its own optimizer, and trains on the same batch. Before timing, the first step's
losses are checked against eager's. Warm-up steps first (torch.compile's first step, which
compiles forward and backward, is timed on its own), then the contenders are timed
interleaved, one step each per round (rounds under load from other processes are retaken, as
in bench_cpu.py), and the table shows medians and ratios to eager.

Also measured: densenet121's training-step peak memory (forward + backward) for eager and -O2:
the highest running total of the CPU allocator's allocations and frees during one step
(torch.profiler with profile_memory, as archgraph.profile.memory.measured_peak does for
inference), above what existed before it.

    bash scripts/dev python benchmarks/bench_train.py             # everything (~30 minutes)
    bash scripts/dev python benchmarks/bench_train.py --models resnet50 --batches 2 \\
        --image-size 64 --rounds 2 --warmup 1 --no-inductor --patience 0  # a check that it runs
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_cpu  # noqa: E402
from bench_cpu import THREADS, OtherLoad, reference, wait_for_quiet  # noqa: E402

import archgraph  # noqa: E402
from archgraph.profile.memory import _quiet_stderr  # noqa: E402

MODELS = ("resnet50", "densenet121")
CLASSES = 1000


class Trainer:
    """One contender: a module in training mode and its SGD optimizer."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module.train()
        self.opt = torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.module(x), y)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


def contenders(name: str, batch: int, size: int, inductor: bool) -> dict[str, Trainer]:
    eager = reference(name)
    graph = archgraph.load(name, batch=batch, image_size=size)
    out = {
        "eager": Trainer(copy.deepcopy(eager)),
        "archgraph -O2": Trainer(archgraph.compile(graph, 2, eager.state_dict(), mode="train")),
    }
    if inductor:
        out["torch.compile"] = Trainer(torch.compile(copy.deepcopy(eager)))
    return out


def batch_of(batch: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, 3, size, size, generator=gen)
    return x, torch.randint(0, CLASSES, (batch,), generator=gen)


def time_interleaved(
    trainers: dict[str, Trainer], x: torch.Tensor, y: torch.Tensor, rounds: int, load: OtherLoad
) -> tuple[dict[str, float], int]:
    """Median seconds per step per contender, one step each per round; a round under load
    from other processes is retaken (once per requested round at most). Returns the medians
    and the rounds kept under load."""
    samples: dict[str, list[float]] = {k: [] for k in trainers}
    dropped = loaded = 0
    while len(samples["eager"]) < rounds:
        load.cores()
        times = {}
        for key, trainer in trainers.items():
            start = time.perf_counter()
            trainer.step(x, y)
            times[key] = time.perf_counter() - start
        if load.cores() > 0.15:
            if dropped < rounds:
                dropped += 1
                wait_for_quiet(load)
                continue
            loaded += 1
        for key, t in times.items():
            samples[key].append(t)
    return {k: statistics.median(v) for k, v in samples.items()}, loaded


def bench(
    name: str, batch: int, size: int, rounds: int, warmup: int, inductor: bool, load: OtherLoad
) -> dict:
    trainers = contenders(name, batch, size, inductor)
    x, y = batch_of(batch, size)
    first: dict[str, float] = {}
    losses: dict[str, float] = {}
    for key, trainer in trainers.items():
        start = time.perf_counter()
        losses[key] = trainer.step(x, y)
        first[key] = time.perf_counter() - start
    for key, loss in losses.items():
        if abs(loss - losses["eager"]) > 1e-3 * abs(losses["eager"]):
            raise SystemExit(f"{name}: {key}'s first loss {loss} differs from eager's")
    for _ in range(warmup):
        for trainer in trainers.values():
            trainer.step(x, y)
    wait_for_quiet(load)
    medians, loaded = time_interleaved(trainers, x, y, rounds, load)
    return {"model": name, "batch": batch, "medians": medians, "first": first, "loaded": loaded}


def step_peak(trainer: Trainer, x: torch.Tensor, y: torch.Tensor) -> int:
    """Peak bytes the CPU allocator held during forward + backward, above what existed before."""
    from torch.profiler import ProfilerActivity, profile

    trainer.opt.zero_grad(set_to_none=True)
    prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
    with _quiet_stderr():
        prof.start()
    try:
        F.cross_entropy(trainer.module(x), y).backward()
    finally:
        with _quiet_stderr():
            prof.stop()
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    return max(itertools.accumulate((e.nbytes() for e in events), initial=0))


def peak_memory(batch: int, size: int) -> dict[str, float]:
    trainers = contenders("densenet121", batch, size, inductor=False)
    x, y = batch_of(batch, size)
    out = {}
    for key, trainer in trainers.items():
        trainer.step(x, y)  # warm: gradients and optimizer state exist before measuring
        out[key] = step_peak(trainer, x, y) / 1e6
    return out


def print_tables(rows: list[dict], memory: dict[str, float] | None, batch_mem: int) -> None:
    keys = list(rows[0]["medians"]) if rows else []
    print("\n| model | batch | " + " | ".join(f"{k} steps/s" for k in keys) + " | -O2 / eager "
          "| torch.compile / eager | rounds under load |")  # fmt: skip
    print("|---|---|" + "---|" * (len(keys) + 3))
    for r in rows:
        m = r["medians"]
        rates = " | ".join(f"{1 / m[k]:.2f}" for k in keys)
        inductor = f"{m['eager'] / m['torch.compile']:.2f}x" if "torch.compile" in m else "-"
        print(f"| {r['model']} | {r['batch']} | {rates} | {m['eager'] / m['archgraph -O2']:.2f}x "
              f"| {inductor} | {r['loaded']} |")  # fmt: skip
    for r in rows:
        if "torch.compile" in r["first"]:
            print(f"{r['model']} batch {r['batch']}: torch.compile first step "
                  f"{r['first']['torch.compile']:.1f} s")  # fmt: skip
    if memory:
        base = memory["eager"]
        print(f"\n| densenet121 training step, batch {batch_mem} | allocator peak | / eager |")
        print("|---|---|---|")
        for key, mb in memory.items():
            print(f"| {key} | {mb:.1f} MB | {mb / base:.2f}x |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batches", nargs="+", type=int, default=[8, 32])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-inductor", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--patience", type=float, default=bench_cpu.PATIENCE_S,
                        help="seconds to wait for a quiet machine before a measurement")  # fmt: skip
    args = parser.parse_args()
    bench_cpu.PATIENCE_S = args.patience
    torch.set_num_threads(args.threads)
    load = OtherLoad()
    rows = [
        bench(name, batch, args.image_size, args.rounds, args.warmup, not args.no_inductor, load)
        for name, batch in itertools.product(args.models, args.batches)
    ]
    memory = None if args.no_memory else peak_memory(args.memory_batch, args.image_size)
    print_tables(rows, memory, args.memory_batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
