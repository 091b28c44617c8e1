"""Sparse training compared: dense vs random ERK (static) vs GMP vs GraNet at 80% and 90% sparsity.

A small ResNet (examples/small_resnet.yaml) learns scikit-learn's 8x8 digits upscaled to 32x32
(archgraph.train: the same loop as `archgraph train`, seeded, so runs of one seed differ only in
the schedule; each seed draws its own train/held-out split, initialization and batch order, and
the methods are compared seed by seed). Accuracy is measured on the held-out validation split after the last epoch; sparsity
is counted as exact zeros of the trained prunable weights; MACs per sample scale each masked
layer by its density. Prints a Markdown table and saves a plot of accuracy against sparsity.

    python examples/sparse_training.py --epochs 10 --seeds 3 --jobs 2 --out sparse_training.png
    python examples/sparse_training.py --fast     # a few steps per run: checks the wiring only
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import archgraph  # noqa: E402
from archgraph.train import TrainConfig, load_data, train  # noqa: E402

SPEC = Path(__file__).resolve().parent / "small_resnet.yaml"
METHODS = ("erk", "gmp", "granet")
SPARSITIES = (0.8, 0.9)
LABELS = {"dense": "dense", "erk": "random ERK (static)", "gmp": "GMP", "granet": "GraNet"}


def run_one(method: str, sparsity: float, seed: int, args: argparse.Namespace):
    """One training run (its own process when --jobs > 1): the last epoch's row."""
    torch.set_num_threads(1)
    graph = archgraph.load(SPEC, image_size=32, width=args.width, num_classes=10)
    data = load_data("digits", graph, seed=seed)
    epochs = args.epochs
    if args.fast:
        data = dataclasses.replace(data, x_train=data.x_train[:128], y_train=data.y_train[:128])
        epochs = 1
    config = TrainConfig(
        epochs=epochs,
        batch=args.batch,
        lr=args.lr,
        seed=seed,
        schedule=None if method == "dense" else method,
        sparsity=sparsity,
    )
    return train(graph, data, config).rows[-1], len(data.y_train), len(data.y_val), epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--width", type=int, default=8, help="channels of the first stage")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1: split, init and order")
    p.add_argument("--jobs", type=int, default=1, help="training runs in parallel processes")
    p.add_argument("--fast", action="store_true", help="1 epoch on 128 samples per run")
    p.add_argument("--out", default="sparse_training.png", help="the plot")
    args = p.parse_args()

    seeds = range(args.seeds)
    runs = [("dense", 0.0)] + [(m, s) for s in SPARSITIES for m in METHODS]
    jobs = [(method, sparsity, seed) for method, sparsity in runs for seed in seeds]
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {job: pool.submit(run_one, *job, args) for job in jobs}
        results = {}
        for job, future in futures.items():
            results[job] = future.result()
            method, sparsity, seed = job
            last = results[job][0]
            print(
                f"  {LABELS[method]:<20} target {sparsity:.2f} seed {seed}: "
                f"val acc {last.val_acc:.4f}, sparsity {last.sparsity:.4f}",
                flush=True,
            )
    n_train, n_val, epochs = results[jobs[0]][1:]
    acc = {(m, s): [results[(m, s, seed)][0].val_acc for seed in seeds] for m, s in runs}
    first = {(m, s): results[(m, s, 0)][0] for m, s in runs}

    print(
        f"\nsmall_resnet (width {args.width}), digits 8x8 -> 32x32, {n_train} train / {n_val} "
        f"held-out samples, {epochs} epochs, batch {args.batch}, seeds 0..{args.seeds - 1}\n"
    )
    print(
        "| method | target sparsity | measured sparsity | held-out accuracy | "
        "accuracy per seed | MACs/sample | MACs vs dense |"
    )
    print("|---|---|---|---|---|---|---|")
    dense_macs = first[("dense", 0.0)].macs
    for m, s in runs:
        r, per_seed = first[(m, s)], acc[(m, s)]
        print(
            f"| {LABELS[m]} | {s:.2f} | {r.sparsity:.4f} | {statistics.mean(per_seed):.4f} | "
            f"{' '.join(f'{a:.4f}' for a in per_seed)} | {r.macs:,} | {r.macs / dense_macs:.3f}x |"
        )
    print("\n| ordering | sparsity | seeds where it holds | mean difference |")
    print("|---|---|---|---|")
    for better, worse in (("gmp", "erk"), ("granet", "gmp")):
        for s in SPARSITIES:
            diffs = [a - b for a, b in zip(acc[(better, s)], acc[(worse, s)], strict=True)]
            holds = sum(d >= 0 for d in diffs)
            print(
                f"| {LABELS[better]} >= {LABELS[worse]} | {s:.2f} | {holds} of {len(diffs)} | "
                f"{statistics.mean(diffs):+.4f} |"
            )

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axhline(statistics.mean(acc[("dense", 0.0)]), color="black", linestyle="--", label="dense")
    for method in METHODS:
        pts = [(first[(method, s)].sparsity, statistics.mean(acc[(method, s)])) for s in SPARSITIES]
        ax.plot(*zip(*pts, strict=True), marker="o", label=LABELS[method])
    ax.set_xlabel("measured weight sparsity")
    ax.set_ylabel(f"held-out accuracy (mean of {args.seeds} seeds)")
    ax.set_title("sparse training, small_resnet on digits (32x32)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"\nplot written to {args.out}")


if __name__ == "__main__":
    main()
