"""Where -O2's CPU inference time goes next to ONNX Runtime's, per model: torch.profiler over the
-O2 module and ORT's own profiler over the same weights, both summed into the same categories
(convolution, matmul/linear, attention, normalization, elementwise, layout, pooling, concat, other)
and the time outside any op (Python, the fx module's dispatch; ORT: the session's own overhead).

Each contender is profiled in its own block (not interleaved: the profilers would time each
other), after warm-up, over `--calls` calls; figures are milliseconds per call. ORT's session
is bench_cpu.onnx_session's (all graph optimizations, 2 intra-op threads, spinning off) with its
profiler on. The totals are profiled wall time per call, and profiling changes small calls'
timing (more so ORT's), so they show where the time goes, not how the contenders compare:
bench_cpu.py's interleaved medians give the ratios.

    bash scripts/dev python benchmarks/profile_vs_ort.py                 # ~5 minutes
    bash scripts/dev python benchmarks/profile_vs_ort.py --models resnet50 --batches 1 --calls 3
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_cpu  # noqa: E402
from bench_cpu import THREADS, reference  # noqa: E402

import archgraph  # noqa: E402
from archgraph.profile.memory import _quiet_stderr  # noqa: E402

MODELS = ("resnet50", "densenet121", "vovnet39a", "vit_small_patch16_224", "pvt_v2_b0")
WARMUP = 3
CATEGORIES = (
    "conv",
    "matmul",
    "attention",
    "norm",
    "elementwise",
    "layout",
    "pool",
    "concat",
    "other ops",
    "outside ops",
)

# substrings of an aten op name (after "aten::" / "mkldnn::") or an ORT op type, first match wins
_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("attention", ("scaled_dot_product", "attention", "softmax")),
    ("conv", ("conv",)),
    ("matmul", ("linear", "addmm", "matmul", "gemm", "bmm", "baddbmm", "mm")),
    ("norm", ("norm",)),
    ("layout", ("copy", "contiguous", "reorder", "transpose", "clone", "to_dense", "_to_copy")),
    ("pool", ("pool",)),
    ("concat", ("cat", "concat")),
    ("elementwise", ("add", "mul", "relu", "gelu", "sigmoid", "silu", "clamp", "div", "sub",
                     "erf", "tanh", "hardswish", "mean", "sum", "max", "where", "sqrt")),
)  # fmt: skip


def category(op: str) -> str:
    name = op.split("::")[-1].lower()
    for cat, keys in _RULES:
        if any(k in name for k in keys):
            return cat
    return "other ops"


def torch_breakdown(module: Callable, x: torch.Tensor, calls: int) -> dict[str, float]:
    """ms per call by category: self CPU time of the top-level ops, and the rest of the wall time
    (Python, dispatch) as 'outside ops'."""
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        prof = profile(activities=[ProfilerActivity.CPU])
        with _quiet_stderr():
            prof.start()
        start = time.perf_counter()
        for _ in range(calls):
            module(x)
        wall = time.perf_counter() - start
        with _quiet_stderr():
            prof.stop()
    out: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        if event.key.startswith(("aten::", "mkldnn::", "prim::")):
            out[category(event.key)] += event.self_cpu_time_total / 1e3 / calls
    out["outside ops"] = max(0.0, wall * 1e3 / calls - sum(out.values()))
    return dict(out)


def ort_breakdown(model: torch.nn.Module, x: torch.Tensor, calls: int, workdir: str) -> dict:
    """ms per call by category from ORT's profile (node kernel times), and the rest of the
    wall time of session.run as 'outside ops'."""
    session = bench_cpu.onnx_session(model, x, workdir, str(Path(workdir) / "ort_profile"))
    feed = {"x": x.numpy()}
    for _ in range(WARMUP):
        session.run(None, feed)  # kept out of the sums below
    start = time.perf_counter()
    for _ in range(calls):
        session.run(None, feed)
    wall = time.perf_counter() - start
    trace = json.loads(Path(session.end_profiling()).read_text())
    runs = sorted(e["ts"] for e in trace if e.get("cat") == "Session" and e["name"] == "model_run")
    first_timed = runs[WARMUP]
    out: dict[str, float] = defaultdict(float)
    for e in trace:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= first_timed:
            out[category(e["args"].get("op_name", e["name"]))] += e["dur"] / 1e3 / calls
    out["outside ops"] = max(0.0, wall * 1e3 / calls - sum(out.values()))
    return dict(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models.split(","):
            eager = reference(name)
            for batch in (int(b) for b in args.batches.split(",")):
                x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(batch))
                graph = archgraph.load(name, batch=batch)
                module = archgraph.compile(graph, 2, eager.state_dict()).eval()
                with torch.inference_mode():
                    for _ in range(WARMUP):
                        module(x)
                bench_cpu.wait_for_quiet(bench_cpu.OtherLoad(), 30)
                o2 = torch_breakdown(module, x, args.calls)
                ort_ms = ort_breakdown(eager, x, args.calls, workdir)
                rows.append((name, batch, o2, ort_ms))
                print(json.dumps({"model": name, "batch": batch, "O2": o2, "ORT": ort_ms}),
                      flush=True)  # fmt: skip
    print("\n| model | batch | contender | total ms | " + " | ".join(CATEGORIES) + " |")
    print("|---|---|---|---|" + "---|" * len(CATEGORIES))
    for name, batch, o2, ort_ms in rows:
        for label, cats in (("-O2", o2), ("ORT", ort_ms)):
            cells = " | ".join(f"{cats.get(c, 0.0):.1f}" for c in CATEGORIES)
            print(f"| {name} | {batch} | {label} | {sum(cats.values()):.1f} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
