"""Structured pruning against Torch-Pruning (issue 5): 50% of the channels, L1 importance.

For each model both tools prune the same weights (the reference model's, loaded strictly into
the archgraph spec): archgraph.prune_channels(graph, 0.5, importance="l1") on the spec, and
torch_pruning.pruner.MagnitudePruner(MagnitudeImportance(p=1), pruning_ratio=0.5, classifier
ignored) on the torchvision/timm model. Reported: params and MACs after (both counted with
torch.utils.flop_counter at batch 1, FLOPs / 2), pruning wall time (Torch-Pruning: dependency
graph + step; archgraph: analysis + slicing + its before/after report), and CPU latency of the
unpruned model and both pruned results, interleaved, after warm-up, medians.

    nice bash scripts/dev python benchmarks/bench_pruning.py [--repeats 15] [--models a,b]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import traceback
from collections.abc import Callable

import torch
from torch import nn

import archgraph
from archgraph.ir.weights import bind_weights


def reference(name: str) -> tuple[nn.Module, nn.Module]:
    """The model and its classifier (left unpruned by Torch-Pruning)."""
    if name in ("resnet50", "densenet121"):
        import torchvision

        model = getattr(torchvision.models, name)(weights=None)
        return model, model.fc if name == "resnet50" else model.classifier
    import timm

    model = timm.create_model(name, pretrained=False)
    return model, model.get_classifier()


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def macs(model: nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def prune_tp(model: nn.Module, classifier: nn.Module, x: torch.Tensor) -> tuple[nn.Module, float]:
    import torch_pruning as tp

    start = time.perf_counter()
    pruner = tp.pruner.MagnitudePruner(
        model,
        x,
        importance=tp.importance.MagnitudeImportance(p=1),
        pruning_ratio=0.5,
        ignored_layers=[classifier],
    )
    pruner.step()
    return model, time.perf_counter() - start


def prune_archgraph(name: str, state: dict[str, torch.Tensor]) -> tuple[nn.Module, float]:
    graph = bind_weights(archgraph.load(name), state)
    start = time.perf_counter()
    pruned, _ = archgraph.prune_channels(graph, 0.5, importance="l1", scope="layer")
    seconds = time.perf_counter() - start
    return archgraph.compile(pruned), seconds


def latencies(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3
) -> dict[str, float]:
    """Median seconds per call, the contenders interleaved call by call."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    with torch.no_grad():
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        for _ in range(repeats):
            for key, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def run(name: str, repeats: int) -> dict[str, object]:
    torch.manual_seed(0)
    x = torch.randn(1, 3, 224, 224)
    base, classifier = reference(name)
    base.eval()
    state = {k: v.clone() for k, v in base.state_dict().items()}
    row: dict[str, object] = {"model": name, "params": count(base), "macs": macs(base, x)}
    contenders: dict[str, Callable[[], object]] = {"unpruned": lambda: base(x)}
    ref_copy, ref_classifier = reference(name)
    ref_copy.load_state_dict(state)
    ref_copy.eval()
    for tool, prune in (
        ("torch-pruning", lambda: prune_tp(ref_copy, ref_classifier, x)),
        ("archgraph", lambda: prune_archgraph(name, state)),
    ):
        try:
            model, seconds = prune()
            model.eval()
            y = model(x)
            assert y.shape == (1, 1000)
            row[tool] = {"params": count(model), "macs": macs(model, x), "seconds": seconds}
            contenders[tool] = lambda m=model: m(x)
        except Exception as e:  # a contender failing is a result, not a crash
            row[tool] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:120]}
            traceback.print_exc()
    row["latency"] = latencies(contenders, repeats)
    return row


def table(rows: list[dict[str, object]]) -> str:
    out = [
        "| model | tool | ok | params after | MACs after | pruning time | CPU latency (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat = r["latency"]
        out.append(
            f"| {r['model']} | unpruned | yes | {r['params'] / 1e6:.2f} M | "
            f"{r['macs'] / 1e9:.3f} G | - | {lat['unpruned'] * 1e3:.1f} ms |"  # type: ignore[index]
        )
        for tool in ("torch-pruning", "archgraph"):
            t = r[tool]
            if "error" in t:  # type: ignore[operator]
                out.append(f"| {r['model']} | {tool} | **failed**: {t['error']} | | | | |")  # type: ignore[index]
                continue
            out.append(
                f"| {r['model']} | {tool} | yes | {t['params'] / 1e6:.2f} M "  # type: ignore[index]
                f"({t['params'] / r['params']:.3f}x) | {t['macs'] / 1e9:.3f} G "  # type: ignore[index, operator]
                f"({t['macs'] / r['macs']:.3f}x) | {t['seconds']:.2f} s | "  # type: ignore[index, operator]
                f"{lat[tool] * 1e3:.1f} ms ({lat[tool] / lat['unpruned']:.2f}x) |"  # type: ignore[index]
            )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet50,densenet121,vovnet39a")
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args()
    import torch_pruning

    print(
        f"torch {torch.__version__}, torch-pruning {torch_pruning.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    rows = []
    for m in args.models.split(","):
        rows.append(run(m, args.repeats))
        print(table(rows[-1:]), flush=True)  # as each model finishes
    print(table(rows))


if __name__ == "__main__":
    main()
