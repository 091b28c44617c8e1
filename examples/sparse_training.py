"""Sparse training compared: dense vs random ERK (static) vs GMP vs GraNet at 80% and 90% sparsity.

A small ResNet (examples/small_resnet.yaml) learns scikit-learn's 8x8 digits upscaled to 32x32
(archgraph.train: the same loop as `archgraph train`, seeded, so runs differ only in the
schedule). Accuracy is measured on the held-out validation split after the last epoch; sparsity
is counted as exact zeros of the trained prunable weights; MACs per sample scale each masked
layer by its density. Prints a Markdown table and saves a plot of accuracy against sparsity.

    python examples/sparse_training.py --epochs 10 --out sparse_training.png
    python examples/sparse_training.py --fast     # a few steps per run: checks the wiring only
"""

from __future__ import annotations

import argparse
import dataclasses
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--width", type=int, default=8, help="channels of the first stage")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast", action="store_true", help="1 epoch on 128 samples per run")
    p.add_argument("--out", default="sparse_training.png", help="the plot")
    args = p.parse_args()
    torch.set_num_threads(1)

    graph = archgraph.load(SPEC, image_size=32, width=args.width, num_classes=10)
    data = load_data("digits", graph, seed=args.seed)
    epochs = args.epochs
    if args.fast:
        data = dataclasses.replace(data, x_train=data.x_train[:128], y_train=data.y_train[:128])
        epochs = 1
    runs = [("dense", 0.0)] + [(m, s) for s in SPARSITIES for m in METHODS]
    rows = []
    for method, sparsity in runs:
        config = TrainConfig(
            epochs=epochs,
            batch=args.batch,
            lr=args.lr,
            seed=args.seed,
            schedule=None if method == "dense" else method,
            sparsity=sparsity,
        )
        last = train(graph, data, config).rows[-1]
        rows.append((method, sparsity, last))
        print(
            f"  {LABELS[method]:<20} target {sparsity:.2f}: val acc {last.val_acc:.4f}, "
            f"sparsity {last.sparsity:.4f}",
            flush=True,
        )

    dense_macs = rows[0][2].macs
    print(
        f"\n{graph.name} (width {args.width}), digits 8x8 -> 32x32, {len(data.y_train)} train / "
        f"{len(data.y_val)} held-out samples, {epochs} epochs, batch {args.batch}, seed {args.seed}\n"
    )
    print(
        "| method | target sparsity | measured sparsity | held-out accuracy | MACs/sample | MACs vs dense |"
    )
    print("|---|---|---|---|---|---|")
    for method, sparsity, r in rows:
        print(
            f"| {LABELS[method]} | {sparsity:.2f} | {r.sparsity:.4f} | {r.val_acc:.4f} | "
            f"{r.macs:,} | {r.macs / dense_macs:.3f}x |"
        )

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axhline(rows[0][2].val_acc, color="black", linestyle="--", label=LABELS["dense"])
    for method in METHODS:
        pts = [(r.sparsity, r.val_acc) for m, _, r in rows if m == method]
        ax.plot(*zip(*pts, strict=True), marker="o", label=LABELS[method])
    ax.set_xlabel("measured weight sparsity")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(f"sparse training, {graph.name} on digits (32x32)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"\nplot written to {args.out}")


if __name__ == "__main__":
    main()
