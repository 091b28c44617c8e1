"""Gradual magnitude pruning (Zhu & Gupta 2017) while training a small zoo model.

A narrow, shallow vovnet39a learns a synthetic 10-class task (noisy images around one colour per
class) for a few hundred steps; GradualPruning raises the weight sparsity from 0 to
`--sparsity` along the cubic schedule, recomputing magnitude masks every `--frequency` steps and
re-applying them after every optimizer step. A plot of sparsity and loss against step is saved.

    python examples/gradual_pruning.py --steps 200 --out gradual_pruning.png
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import archgraph  # noqa: E402
from archgraph.passes.prune import GradualPruning  # noqa: E402

SMALL = {  # a narrow, shallow VoVNet: one OSA block of three layers per stage
    "image_size": 32,
    "stem_channels": [16, 16, 16],
    "mid_channels": [16, 16, 24, 24],
    "out_channels": [32, 48, 64, 96],
    "blocks_per_stage": [1, 1, 1, 1],
    "layers_per_block": 3,
    "num_classes": 10,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--sparsity", type=float, default=0.8)
    p.add_argument("--frequency", type=int, default=10, help="steps between mask updates")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--out", default="gradual_pruning.png")
    args = p.parse_args()
    torch.manual_seed(0)

    graph = archgraph.load("vovnet39a", batch=args.batch, **SMALL)
    model = archgraph.compile(graph, seed=0).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    # prune from 10% of training to 70% of it, then fine-tune at the final sparsity
    start = max(args.steps // 10, 1)
    n = max((args.steps * 6 // 10) // args.frequency, 1)
    pruning = GradualPruning(
        model, opt, final=args.sparsity, start=start, frequency=args.frequency, steps=n
    )

    colors = torch.randn(10, 3, 1, 1)  # class k: noise around a colour of its own
    history: list[tuple[int, float, float]] = []
    for step in range(args.steps):
        y = torch.randint(0, 10, (args.batch,))
        x = torch.randn(args.batch, 3, 32, 32) + colors[y]
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()  # the masks are re-applied by the optimizer hook
        sparsity = pruning.step(step)
        history.append((step, sparsity, loss.item()))

    weights = [dict(model.named_parameters())[k] for k in pruning.keys]
    measured = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    steps, sparsities, losses = zip(*history, strict=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, color="tab:blue", alpha=0.6, label="loss")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(steps, sparsities, color="tab:red", label="target sparsity")
    ax2.set_ylabel("weight sparsity", color="tab:red")
    ax2.set_ylim(0, 1)
    ax.set_title(f"gradual magnitude pruning, {graph.name} (small), cubic schedule")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    first = sum(losses[:10]) / min(10, len(losses))
    last = sum(losses[-10:]) / min(10, len(losses))
    print(
        f"steps {args.steps}: loss {first:.3f} -> {last:.3f}; target sparsity {sparsities[-1]:.3f}, "
        f"measured {measured:.3f}; plot written to {args.out}"
    )


if __name__ == "__main__":
    main()
