"""CPU side by side: archgraph -O0 and -O2 against eager PyTorch (the torchvision/timm reference
model), torch.compile (inductor with `freezing` on: weights folded in as constants and
prepacked for oneDNN, its best CPU inference mode) and ONNX Runtime, on 2 threads, fp32,
batch 1 and 8.

One process; every contender gets the same weights (the reference model's, randomized with a
seed) and the same input; outputs are checked against eager before timing. Warm-up calls first
(torch.compile's first call, which compiles, is timed on its own), then the contenders are timed
interleaved, one call each per round, and the table shows medians and ratios to eager.

Also measured: spec -> -O2 module time (load the spec, bind the weights, run the passes, lower;
and to its first output) against torch.compile's first call; and densenet121's peak activation
memory at batch 8 for eager, -O0 and -O2, by two methods (see `peak_memory`).

    bash scripts/dev python benchmarks/bench_cpu.py               # everything (~20 minutes)
    bash scripts/dev python benchmarks/bench_cpu.py --models resnet50 --batches 1 --no-inductor
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# torch.compile's first call is measured cold, as a user meets it: a fresh inductor cache
# directory and no FX-graph or AOT-autograd cache reuse (set before torch is imported).
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_cpu_inductor_")
atexit.register(shutil.rmtree, os.environ["TORCHINDUCTOR_CACHE_DIR"], ignore_errors=True)
os.environ["TORCHINDUCTOR_FX_GRAPH_CACHE"] = "0"
os.environ["TORCHINDUCTOR_AUTOGRAD_CACHE"] = "0"

import torch  # noqa: E402
from torch import nn  # noqa: E402

import archgraph  # noqa: E402
from archgraph.passes import LEVELS  # noqa: E402
from archgraph.profile.memory import liveness_peak, measured_peak  # noqa: E402

THREADS = 2
MODELS = ("resnet50", "densenet121", "vovnet39a", "vit_small_patch16_224", "pvt_v2_b0")
TORCHVISION = ("resnet50", "densenet121")
INDUCTOR = "torch.compile (freezing)"
# -O2 passes whose worth is timed alone (--ablation)
ABLATIONS = ("layout", "dense_concat", "fuse_conv", "inplace_residual")


def reference(name: str, seed: int = 0) -> nn.Module:
    """The reference model in eval mode, with seeded random weights (BN statistics included)."""
    if name in TORCHVISION:
        import torchvision

        model = getattr(torchvision.models, name)(weights=None)
    else:
        import timm

        model = timm.create_model(name, pretrained=False)
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for key, value in state.items():
        if value.is_floating_point() and key.endswith(("running_mean", "running_var")):
            noise = torch.rand(value.shape, generator=gen) * 0.2
            state[key] = noise + 0.9 if key.endswith("running_var") else noise - 0.1
    model.load_state_dict(state)
    return model.eval()


def onnx_session(model: nn.Module, x: torch.Tensor, workdir: str, profile_prefix: str = "") -> Any:
    """Export the eager model with torch.onnx (static shapes) and open an ORT session: all graph
    optimizations, THREADS intra-op threads, spinning off; ORT's profiler on if profile_prefix."""
    import onnxruntime as ort

    path = os.path.join(workdir, f"model_{x.shape[0]}.onnx")
    torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["y"], dynamo=True,
                      verbose=False, external_data=False)  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT's workers otherwise spin for a while after each run, taking the cores from whichever
    # contender is timed next in the round
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnx_runtime(
    model: nn.Module, x: torch.Tensor, workdir: str
) -> Callable[[torch.Tensor], object]:
    """The model as an ORT session (onnx_session), called like the model."""
    session = onnx_session(model, x, workdir)

    def run(t: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"x": t.numpy()})[0])

    return run


def spec_to_module(
    name: str, state: dict[str, torch.Tensor], x: torch.Tensor, repeats: int = 3
) -> tuple[float, float]:
    """Seconds from the spec to an -O2 module, and to its first output (which packs the
    weights): the best of `repeats` fresh builds in this process."""
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        graph = archgraph.load(name, batch=x.shape[0])
        module = archgraph.compile(graph, 2, state).eval()
        built = time.perf_counter() - start
        with torch.inference_mode():
            module(x)
        best = min(best, (built, time.perf_counter() - start))
        del module
    return best


class OtherLoad:
    """CPU time other processes used since the last call, in cores (from /proc/stat and
    /proc/self/stat). On a 2-core machine another busy process starves one of torch's two
    OpenMP threads and a 30 ms call takes seconds: such samples are not this machine's speed."""

    def __init__(self) -> None:
        self._last = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait, in ticks
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return busy, int(own[11]) + int(own[12]), time.monotonic()

    def cores(self) -> float:
        busy, own, now = self._read()
        last_busy, last_own, last_t = self._last
        self._last = (busy, own, now)
        ticks = os.sysconf("SC_CLK_TCK") * max(now - last_t, 1e-3)
        return max(0.0, (busy - last_busy) - (own - last_own)) / ticks


QUIET = 0.15  # cores other processes may use during a round before it is taken again
PATIENCE_S = 60.0  # how long to wait for quiet before measuring anyway (--patience)


def wait_for_quiet(load: OtherLoad, patience_s: float | None = None) -> bool:
    """Wait (up to patience_s) until other processes stay under QUIET for 3 seconds; returns
    whether it got quiet (on a shared machine it may not: the caller records that)."""
    deadline = time.monotonic() + (PATIENCE_S if patience_s is None else patience_s)
    load.cores()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        if load.cores() > QUIET:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 3:
            return True
    return False


def time_interleaved(
    fns: dict[str, Callable], x: torch.Tensor, rounds: int, load: OtherLoad
) -> tuple[dict[str, float], int, int]:
    """Median seconds per contender; each round calls every contender once, in turn. A round
    during which other processes used more than QUIET cores is dropped and taken again (after
    waiting for quiet), until as many rounds as requested were dropped; after that loaded
    rounds are kept (every contender shares the load of its round, so ratios stay fair, while
    absolute times are not this machine's speed). Returns the medians, the rounds dropped and
    the rounds kept under load."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    dropped = loaded = 0
    with torch.inference_mode():
        while len(samples["eager"]) < rounds:
            load.cores()
            times = {}
            for key, fn in fns.items():
                start = time.perf_counter()
                fn(x)
                times[key] = time.perf_counter() - start
            if load.cores() > QUIET:
                if dropped < rounds:
                    dropped += 1
                    wait_for_quiet(load)
                    continue
                loaded += 1
            for key, t in times.items():
                samples[key].append(t)
    return {k: statistics.median(v) for k, v in samples.items()}, dropped, loaded


def max_error(out: object, ref: torch.Tensor) -> float:
    assert isinstance(out, torch.Tensor)
    return float((out - ref).abs().max() / ref.abs().max())


def bench_model(name: str, batches: list[int], rounds: int, warmup: int, inductor: bool,
                onnx: bool, workdir: str, load: OtherLoad, ablation: bool) -> list[dict]:  # fmt: skip
    rows = []
    eager = reference(name)
    state = eager.state_dict()
    for batch in batches:
        x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(batch))
        wait_for_quiet(load)
        built, first_output = spec_to_module(name, state, x)
        others = {"spec_to_O2": load.cores()}
        graph = archgraph.load(name, batch=batch)
        fns: dict[str, Callable] = {
            "eager": eager,
            "archgraph -O0": archgraph.compile(graph, 0, state).eval(),
            "archgraph -O2": archgraph.compile(graph, 2, state).eval(),
        }
        if ablation:
            fns["archgraph -O1"] = archgraph.compile(graph, 1, state).eval()
            for dropped in ABLATIONS:
                names = [p for p in LEVELS[2] if p != dropped]
                fns[f"-O2 without {dropped}"] = archgraph.compile(
                    graph, 2, state, passes=names
                ).eval()
        first_call: dict[str, float] = {}
        if inductor:
            torch._dynamo.reset()
            compiled = torch.compile(eager)
            wait_for_quiet(load)
            start = time.perf_counter()
            with torch._inductor.config.patch(freezing=True), torch.inference_mode():
                compiled(x)
            first_call[INDUCTOR] = time.perf_counter() - start
            others[f"{INDUCTOR} first call"] = load.cores()
            fns[INDUCTOR] = compiled
        if onnx:
            start = time.perf_counter()
            fns["ONNX Runtime"] = onnx_runtime(eager, x, workdir)
            first_call["ONNX Runtime"] = time.perf_counter() - start
        with torch.inference_mode():
            ref = eager(x)
            errors = {k: max_error(fn(x), ref) for k, fn in fns.items()}
            for _ in range(warmup):
                for fn in fns.values():
                    fn(x)
        wait_for_quiet(load)
        medians, dropped, loaded = time_interleaved(fns, x, rounds, load)
        row = {"model": name, "batch": batch, "median_ms": {k: v * 1e3 for k, v in medians.items()},
               "ratio": {k: v / medians["eager"] for k, v in medians.items()}, "error": errors,
               "spec_to_O2_module_s": built, "spec_to_O2_first_output_s": first_output,
               "first_call_s": first_call, "rounds_dropped_for_load": dropped,
               "rounds_kept_under_load": loaded,
               "other_processes_cores": others}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
        del fns
        gc.collect()
    return rows


# ---- peak memory ------------------------------------------------------------------------------


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_peak_child(contender: str, name: str, batch: int) -> None:
    """Child process: one warm call, then the resident-set high-water mark of one more call
    above the resident set before it (bytes), printed as JSON."""
    torch.set_num_threads(THREADS)
    eager = reference(name)
    fn: Callable = eager
    if contender != "eager":
        level = int(contender[-1])
        fn = archgraph.compile(archgraph.load(name, batch=batch), level, eager.state_dict()).eval()
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        fn(x)
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = _rss_kib("VmRSS")
        fn(x)
        peak = _rss_kib("VmHWM")
    print(json.dumps({"bytes": (peak - before) * 1024}))


def peak_memory(name: str = "densenet121", batch: int = 8) -> dict[str, dict[str, float]]:
    """Peak activation memory of one forward call above what existed before it, two ways:

    - allocator: torch.profiler(profile_memory=True) records every allocation and free of the
      CPU allocator during the call; the peak is the highest running total (archgraph.profile.
      memory.measured_peak). Counts what torch allocates, temporaries inside ops included.
    - rss: in a fresh process per contender (glibc told to return every block over 64 KiB to
      the system at once, so the resident set follows live memory), VmHWM reset through
      /proc/self/clear_refs before the call, minus VmRSS before it. Counts every allocator,
      oneDNN's included.
    """
    torch.set_num_threads(THREADS)
    eager = reference(name)
    graph = archgraph.load(name, batch=batch)
    x = torch.randn(batch, 3, 224, 224)
    out: dict[str, dict[str, float]] = {}
    contenders: dict[str, Callable] = {"eager": eager}
    for level in (0, 2):
        contenders[f"archgraph -O{level}"] = archgraph.compile(
            graph, level, eager.state_dict()
        ).eval()
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    for key, fn in contenders.items():
        with torch.inference_mode():
            fn(x)
        allocator = measured_peak(fn, [x])
        child = subprocess.run(
            [sys.executable, __file__, "--rss-child", key.split()[-1].lstrip("-"), "--rss-model", name,
             "--rss-batch", str(batch), "--threads", str(THREADS)],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        rss = json.loads(child.stdout.strip().splitlines()[-1])["bytes"]
        estimate = liveness_peak(fn.meta["archgraph_ir"]) if key != "eager" else None
        out[key] = {"allocator_mb": allocator / 1e6, "rss_mb": rss / 1e6}
        if estimate is not None:
            out[key]["estimate_mb"] = estimate / 1e6
    return out


# ---- tables -----------------------------------------------------------------------------------


def print_tables(rows: list[dict], memory: dict[str, dict[str, float]] | None) -> None:
    order = ["eager", "archgraph -O0", "archgraph -O2", INDUCTOR, "ONNX Runtime",
             "archgraph -O1", *(f"-O2 without {p}" for p in ABLATIONS)]  # fmt: skip
    present = [c for c in order if any(c in r["ratio"] for r in rows)]
    print(
        "\n| model | batch | eager ms | " + " | ".join(f"{c} / eager" for c in present[1:]) + " |"
    )
    print("|---|---|---|" + "---|" * (len(present) - 1))
    for r in rows:
        cells = [f"{r['ratio'][c]:.2f}x" if c in r["ratio"] else "-" for c in present[1:]]
        print(
            f"| {r['model']} | {r['batch']} | {r['median_ms']['eager']:.1f} | "
            + " | ".join(cells)
            + " |"
        )
    print(
        f"\n| model | batch | spec -> -O2 module | spec -> first output | {INDUCTOR} first call "
        "| ratio to the module | ratio to its first output |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        tc = r["first_call_s"].get(INDUCTOR)
        module, first = r["spec_to_O2_module_s"], r["spec_to_O2_first_output_s"]
        ratios = f"{tc / module:.0f}x | {tc / first:.0f}x" if tc else "- | -"
        print(
            f"| {r['model']} | {r['batch']} | {module * 1e3:.0f} ms | {first * 1e3:.0f} ms | "
            f"{f'{tc:.1f} s' if tc else '-'} | {ratios} |"
        )
    print("\nlargest output error against eager (max |diff| / max |eager|): " + "; ".join(
        f"{r['model']} b{r['batch']}: " + ", ".join(f"{k} {v:.1e}" for k, v in r["error"].items() if k != "eager")
        for r in rows))  # fmt: skip
    if memory:
        base = memory["eager"]
        print(
            "\n| densenet121, batch 8 | allocator peak | / eager | RSS peak | / eager | IR estimate |"
        )
        print("|---|---|---|---|---|---|")
        for key, m in memory.items():
            est = f"{m['estimate_mb']:.1f} MB" if "estimate_mb" in m else "-"
            print(
                f"| {key} | {m['allocator_mb']:.1f} MB | {m['allocator_mb'] / base['allocator_mb']:.2f}x | "
                f"{m['rss_mb']:.1f} MB | {m['rss_mb'] / base['rss_mb']:.2f}x | {est} |"
            )


def main() -> int:
    global PATIENCE_S, THREADS  # set once from --patience / --threads
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=THREADS, help="intra-op threads (default 2)")
    parser.add_argument("--patience", type=float, default=PATIENCE_S,
                        help="seconds to wait for a quiet machine before measuring anyway")  # fmt: skip
    parser.add_argument("--no-inductor", action="store_true")
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--ablation", action="store_true",
                        help="also time -O1 and -O2 without each of " + ", ".join(ABLATIONS))  # fmt: skip
    parser.add_argument("--rss-child", help=argparse.SUPPRESS)
    parser.add_argument("--rss-model", help=argparse.SUPPRESS)
    parser.add_argument("--rss-batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    THREADS = args.threads
    if args.rss_child:
        rss_peak_child(args.rss_child, args.rss_model, args.rss_batch)
        return 0
    torch.set_num_threads(THREADS)
    PATIENCE_S = args.patience
    rows = []
    load = OtherLoad()
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.models.split(","):
            rows += bench_model(name, [int(b) for b in args.batches.split(",")], args.rounds,
                                args.warmup, not args.no_inductor, not args.no_onnx, workdir,
                                load, args.ablation)  # fmt: skip
    memory = None if args.no_memory else peak_memory()
    if memory:
        print(json.dumps({"peak_memory": memory}), flush=True)
    print_tables(rows, memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
