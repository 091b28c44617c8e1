"""The dense-concat pass's split of concats read only by convs (a U-Net's skip, VoVNet's one-shot
aggregation): -O2 as it is against -O2 with the split turned off, side by side in one process.

Both modules come from the same graph and weights; the second is compiled with
archgraph.passes.dense_concat._split_concats replaced by a function that splits nothing, so the
concat stays torch.cat and everything else is the same. Latency: batch 1, 2 threads, fp32,
warm-up calls first, then the two timed interleaved (one call each per round), medians.
Peak memory: one call's highest running total of CPU allocator bytes (torch.profiler,
archgraph.profile.memory.measured_peak), after the warm-up (so weight packing is not in it).
Outputs are checked against each other before timing.

    bash scripts/dev python benchmarks/bench_concat_split.py            # ~3 minutes
    bash scripts/dev python benchmarks/bench_concat_split.py --rounds 3 unet2d:image_size=64
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import archgraph
import archgraph.passes.dense_concat as dense_concat
from archgraph.profile.memory import _quiet_stderr, measured_peak

THREADS = 2
MODELS = (
    "unet2d:image_size=256",
    "resunet3d_glioma:image_size=64",
    "hdenseunet",
    "vovnet39a",
    "ese_vovnet19b_dw",
)


def build(spec: str) -> tuple[archgraph.Graph, dict[str, int]]:
    name, _, overrides = spec.partition(":")
    params = {k: int(v) for k, v in (kv.split("=") for kv in overrides.split(",") if kv)}
    return archgraph.load(name, **params), params


def compile_both(graph: archgraph.Graph) -> dict[str, torch.nn.Module]:
    split = dense_concat._split_concats
    modules = {"split": archgraph.compile(graph, 2).eval()}
    dense_concat._split_concats = lambda rw, claimed: []
    try:
        modules["cat"] = archgraph.compile(graph, 2).eval()
    finally:
        dense_concat._split_concats = split
    return modules


def bench(spec: str, rounds: int, warmup: int) -> dict[str, float | str | int]:
    graph, _ = build(spec)
    modules = compile_both(graph)
    x = torch.randn(graph[graph.inputs[0]].type.shape, generator=torch.Generator().manual_seed(0))
    parted = sum(n.args.get("parts", 1) > 1 for n in modules["split"].meta["archgraph_ir"].nodes())
    with torch.inference_mode():
        ref, got = modules["cat"](x), modules["split"](x)
        error = float((got - ref).abs().max() / ref.abs().max())
        for _ in range(warmup):
            for m in modules.values():
                m(x)
        times: dict[str, list[float]] = {k: [] for k in modules}
        for _ in range(rounds):
            for key, m in modules.items():
                start = time.perf_counter()
                m(x)
                times[key].append(time.perf_counter() - start)
    with _quiet_stderr():
        peaks = {k: measured_peak(m, [x]) for k, m in modules.items()}
    cat_ms, split_ms = (statistics.median(times[k]) * 1e3 for k in ("cat", "split"))
    return {
        "spec": spec,
        "convs": parted,
        "cat_ms": cat_ms,
        "split_ms": split_ms,
        "cat_mb": peaks["cat"] / 1e6,
        "split_mb": peaks["split"] / 1e6,
        "error": error,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("specs", nargs="*", default=list(MODELS), help="name[:param=value,...]")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(THREADS)
    print("| spec (batch 1) | convs over parts | -O2 with torch.cat | -O2 split | time ratio "
          "| peak with torch.cat | peak split | peak ratio | max rel. difference |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for spec in args.specs:
        r = bench(spec, args.rounds, args.warmup)
        print(
            f"| {r['spec']} | {r['convs']} | {r['cat_ms']:.1f} ms | {r['split_ms']:.1f} ms | "
            f"{r['split_ms'] / r['cat_ms']:.2f}x | {r['cat_mb']:.1f} MB | {r['split_mb']:.1f} MB | "
            f"{r['split_mb'] / r['cat_mb']:.2f}x | {r['error']:.1e} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
