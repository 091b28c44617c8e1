"""GPU side by side: the generated CUDA kernels against the eager PyTorch ops they replace (and
torch.compile's kernels for the same expression), per kernel kind and for whole zoo models at
-O2 against -O0. Needs a CUDA GPU and CuPy; without them it says so and exits with status 2.

Each contender gets the same inputs and is checked against eager before timing; warm-up calls
first (compilation: NVRTC for ours, Inductor for torch.compile), then the contenders run
interleaved, one call each per round, timed with CUDA events; the table shows medians, the
ratio to eager, and the effective memory bandwidth (bytes a perfect kernel must move / time).

    bash scripts/dev python benchmarks/bench_cuda.py                  # kernels and models
    bash scripts/dev python benchmarks/bench_cuda.py --no-models --dtype bfloat16 --no-inductor
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F

Fn = Callable[[], torch.Tensor]


def time_interleaved(contenders: dict[str, Fn], rounds: int, warmup: int) -> dict[str, float]:
    """Median milliseconds per contender, one call each per round (CUDA events)."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    torch.cuda.synchronize()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times[name].append(start.elapsed_time(end))
    return {name: statistics.median(t) for name, t in times.items()}


def kernel_cases(dtype: torch.dtype) -> list[tuple[str, int, dict[str, Fn]]]:
    """(name, bytes moved, {contender: fn}) for each kernel kind."""
    from archgraph.codegen.kernels.cuda import dispatch
    from archgraph.codegen.kernels.cuda.functions import (
        CUDA,
        LayerNormFunction,
        SoftmaxFunction,
        run_chain,
    )
    from archgraph.codegen.kernels.cuda.groups import epilogue_chain, steps_chain

    dev = "cuda"
    size = torch.empty(0, dtype=dtype).element_size()
    cases = []
    # conv epilogue: bias + residual + ReLU on a ResNet-50 stage-1 output, channels_last
    y = torch.randn(32, 256, 56, 56, device=dev, dtype=dtype).contiguous(
        memory_format=torch.channels_last
    )
    res = torch.randn_like(y)
    bias = torch.randn(256, device=dev, dtype=dtype)
    chain = epilogue_chain(True, True, "relu")
    cases.append(("conv epilogue bias+res+relu [32,256,56,56] NHWC", 3 * y.numel() * size, {
        "eager": lambda: torch.relu(y + bias.view(1, -1, 1, 1) + res),
        "archgraph": lambda: run_chain(chain, [y, bias.view(1, -1, 1, 1), res], CUDA),
    }))  # fmt: skip
    # bias + GELU after a ViT MLP fc1
    h = torch.randn(64 * 197, 1536, device=dev, dtype=dtype)
    b = torch.randn(1536, device=dev, dtype=dtype)
    gelu = epilogue_chain(True, False, "gelu")
    cases.append(("bias+GELU [64*197, 1536]", 2 * h.numel() * size, {
        "eager": lambda: F.gelu(h + b),
        "archgraph": lambda: run_chain(gelu, [h, b], CUDA),
    }))  # fmt: skip
    # a fused pointwise chain: BN affine, hard-swish, times an SE gate [N, C, 1, 1]
    x = torch.randn(32, 512, 28, 28, device=dev, dtype=dtype)
    gate = torch.rand(32, 512, 1, 1, device=dev, dtype=dtype)
    s, t = torch.rand(512, device=dev, dtype=dtype), torch.randn(512, device=dev, dtype=dtype)
    pw = steps_chain([("affine",), ("hardswish",), ("mul", 1)], 2)
    cases.append(("affine+hardswish+gate [32,512,28,28]", 2 * x.numel() * size, {
        "eager": lambda: F.hardswish(x * s.view(1, -1, 1, 1) + t.view(1, -1, 1, 1)) * gate,
        "archgraph": lambda: run_chain(pw, [x, gate, s.view(1, -1, 1, 1), t.view(1, -1, 1, 1)], CUDA),
    }))  # fmt: skip
    # attention softmax (ViT-S scores) and layer norm
    sc = torch.randn(64, 6, 197, 197, device=dev, dtype=dtype)
    cases.append(("softmax [64,6,197,197]", 2 * sc.numel() * size, {
        "eager": lambda: torch.softmax(sc, -1),
        "archgraph": lambda: SoftmaxFunction.apply(sc, CUDA),
    }))  # fmt: skip
    ln = torch.randn(64 * 197, 384, device=dev, dtype=dtype)
    w, lb = torch.randn(384, device=dev, dtype=dtype), torch.randn(384, device=dev, dtype=dtype)
    cases.append(("layernorm [64*197, 384]", 2 * ln.numel() * size, {
        "eager": lambda: F.layer_norm(ln, (384,), w, lb, 1e-6),
        "archgraph": lambda: LayerNormFunction.apply(ln, w, lb, 1e-6, CUDA),
    }))  # fmt: skip
    # dense-block slice write against torch.cat of the block so far
    parts = [torch.randn(32, 32, 28, 28, device=dev, dtype=dtype) for _ in range(12)]
    buf = torch.empty(32, 32 * 12, 28, 28, device=dev, dtype=dtype)

    def write_all() -> torch.Tensor:
        with torch.no_grad():
            for k, p in enumerate(parts):
                dispatch.buffer_write(buf, p, 32 * k)
        return buf

    cases.append(("dense block: 12 slice writes vs one cat", 2 * buf.numel() * size, {
        "eager": lambda: torch.cat(parts, 1),
        "archgraph": write_all,
    }))  # fmt: skip
    return cases


def run_kernels(dtype: torch.dtype, inductor: bool, rounds: int) -> None:
    print(f"\n## kernels ({dtype}), median of {rounds} interleaved rounds")
    print(f"{'case':<46} {'contender':<10} {'ms':>9} {'vs eager':>9} {'GB/s':>8}")
    for name, nbytes, contenders in kernel_cases(dtype):
        ref = contenders["eager"]().float()
        for who, fn in contenders.items():
            torch.testing.assert_close(fn().float(), ref, rtol=2e-2, atol=2e-2, msg=f"{name} {who}")
        if inductor:
            contenders["inductor"] = torch.compile(contenders["eager"])
        ms = time_interleaved(contenders, rounds, warmup=3)
        for who, t in ms.items():
            print(f"{name:<46} {who:<10} {t:9.3f} {ms['eager'] / t:8.2f}x {nbytes / t / 1e6:8.1f}")


def run_models(dtype: torch.dtype, rounds: int, names: list[str], batch: int) -> None:
    import archgraph

    print(f"\n## models at batch {batch} ({dtype}): -O2 (generated kernels) vs -O0, eval")
    print(f"{'model':<24} {'-O0 ms':>9} {'-O2 ms':>9} {'-O2 / -O0':>10}")
    for name in names:
        graph = archgraph.load(name, batch=batch)
        m0 = archgraph.compile(graph, 0).eval().cuda().to(dtype)
        m2 = archgraph.compile(graph, 2).eval().cuda().to(dtype)
        x = [torch.randn(graph[i].type.shape, device="cuda", dtype=dtype) for i in graph.inputs]
        with torch.no_grad():
            torch.testing.assert_close(m2(*x).float(), m0(*x).float(), rtol=5e-2, atol=5e-2)
            contenders = {"O0": lambda m=m0, x=x: m(*x), "O2": lambda m=m2, x=x: m(*x)}
            ms = time_interleaved(contenders, rounds, warmup=3)
        print(f"{name:<24} {ms['O0']:9.3f} {ms['O2']:9.3f} {ms['O0'] / ms['O2']:9.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--no-inductor", action="store_true")
    parser.add_argument("--no-models", action="store_true")
    parser.add_argument("--models", default="resnet50,densenet121,vit_small_patch16_224")
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    from archgraph.codegen.kernels.cuda import runtime

    if not runtime.available():
        print("bench_cuda needs a CUDA GPU and CuPy; none here", file=sys.stderr)
        return 2
    dtype = getattr(torch, args.dtype)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"arch {runtime.arch_of(torch.device('cuda'))}")  # fmt: skip
    run_kernels(dtype, not args.no_inductor, args.rounds)
    if not args.no_models:
        run_models(dtype, args.rounds, args.models.split(","), args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
