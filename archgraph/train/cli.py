"""`archgraph train SPEC`: its options, and the command (a shell over archgraph.train) that shows
a progress bar while training and a results table after every epoch."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from archgraph.errors import ArchgraphError
from archgraph.train.schedules import SCHEDULES

if TYPE_CHECKING:
    from archgraph.ir.graph import Graph

DEFAULT_BATCH = 32


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The train options (the spec, --set, --limit, --batch and -O come from the main CLI)."""
    p.set_defaults(batch=DEFAULT_BATCH)
    for action in p._actions:  # the shared --batch: here it is the training batch
        if action.dest == "batch":
            action.help = f"training batch size (default {DEFAULT_BATCH})"
    p.add_argument(
        "--data",
        default="digits",
        metavar="digits|DIR",
        help="digits: scikit-learn's bundled 8x8 digits, upscaled to the spec's input (default); "
        "DIR: an image folder with one sub-folder per class (torchvision ImageFolder)",
    )
    p.add_argument("--epochs", type=int, default=5, help="epochs to train (default 5)")
    p.add_argument(
        "--lr", type=float, default=0.05, help="SGD learning rate, cosine-decayed (0.05)"
    )
    p.add_argument("--seed", type=int, default=0, help="weights, split, batches and masks (0)")
    p.add_argument(
        "--sparse-schedule",
        choices=tuple(SCHEDULES),
        help="; ".join(f"{k}: {v}" for k, v in SCHEDULES.items()),
    )
    p.add_argument("--sparsity", type=float, help="the schedule's final weight sparsity, in [0, 1)")
    p.add_argument(
        "--rewrite",
        metavar="NAME",
        action="append",
        default=[],
        help="rewrite the architecture first: dense-to-osa, sparse-wide=S (trained with random "
        "masks at its iso-FLOP densities); repeatable",
    )
    p.add_argument(
        "--prune",
        metavar="KIND=R[,k=v]",
        action="append",
        default=[],
        help="prune before training, as for compile: channels=RATIO[,...] or "
        "weights=SPARSITY[,...] (pruned weights stay zero while training)",
    )
    p.add_argument("--checkpoint", metavar="PATH", help="save the training state after each epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="EPOCH",
        help="stop after this epoch of the --epochs plan (resume later with --resume)",
    )


def prepare(
    graph: Graph, args: argparse.Namespace, say: Callable[[str], None]
) -> tuple[Graph, dict | None]:
    """The rewrites and prunes asked for, in that order; the masks they leave to train with."""
    import torch

    from archgraph.passes.prune.options import parse_prune
    from archgraph.passes.rewrites import rewrite

    masks: dict[str, torch.Tensor] | None = None
    prunes = [parse_prune(text) for text in args.prune]
    for name in args.rewrite:
        if masks is not None:
            raise ArchgraphError(
                f"--rewrite {name} after a rewrite that sets masks",
                hint="give sparse-wide last: its masks are for the widths it makes",
            )
        graph, report = rewrite(graph, name, seed=args.seed)
        say(str(report))
        if report.densities:
            from archgraph.passes.rewrites.sparse_wide import sparse_wide_masks

            masks = sparse_wide_masks(graph, dict(report.densities), args.seed)
    for option in prunes:
        if masks is not None:
            raise ArchgraphError(
                f"--prune {option.kind}={option.ratio:g} after a masked rewrite or weight prune",
                hint="prune once, before training; sparse-wide already sets the sparsity",
            )
        if option.kind == "channels":
            from archgraph.passes.prune.structured import prune_channels

            graph, report = prune_channels(graph, option.ratio, seed=args.seed, **option.options)
        else:
            from archgraph.passes.prune.sparsity import prune_weights

            graph, masks, report = prune_weights(
                graph, option.ratio, seed=args.seed, **option.options
            )
        say(str(report))
    return graph, masks


def run(args: argparse.Namespace, load: Callable[[argparse.Namespace], Graph]) -> int:
    """The train command: `load` gives the spec's graph (the main CLI's loader)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    from archgraph.profile.report import human
    from archgraph.train.data import load_data
    from archgraph.train.loop import TrainConfig, train

    out = Console(highlight=False, soft_wrap=True)
    if (args.sparse_schedule is None) != (args.sparsity is None):
        raise ArchgraphError(
            "--sparse-schedule and --sparsity go together",
            found=f"--sparse-schedule {args.sparse_schedule}, --sparsity {args.sparsity}",
            hint="e.g. --sparse-schedule gmp --sparsity 0.9",
        )
    config = TrainConfig(
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        opt_level=args.opt_level,
        schedule=args.sparse_schedule,
        sparsity=args.sparsity or 0.0,
    )
    config.check()
    graph = load(args)
    graph, masks = prepare(graph, args, lambda line: out.print(line, markup=False))
    data = load_data(args.data, graph, seed=args.seed)
    out.print(
        f"{graph.name}: {len(data.y_train)} training / {len(data.y_val)} validation samples "
        f"of {data.name} ({len(data.classes)} classes), input {list(data.x_train.shape[1:])}"
    )
    table = Table("epoch", "loss", "train acc", "val acc", "sparsity", "MACs/sample")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("training", total=None, loss=float("nan"))

        def on_step(epoch: int, step: int, steps: int, loss: float) -> None:
            bar.update(
                task,
                description=f"epoch {epoch + 1}/{config.epochs}",
                completed=step,
                total=steps,
                loss=loss,
            )

        result = train(
            graph,
            data,
            config,
            masks=masks,
            checkpoint=args.checkpoint,
            resume=args.resume,
            stop_after=args.stop_after,
            on_step=on_step,
        )
    for r in result.rows:
        table.add_row(
            str(r.epoch),
            f"{r.loss:.4f}",
            f"{r.train_acc:.3f}",
            f"{r.val_acc:.3f}",
            f"{r.sparsity:.3f}",
            human(r.macs),
        )
    out.print(table)
    if args.checkpoint:
        out.print(
            f"checkpoint: {args.checkpoint} (epoch {result.rows[-1].epoch if result.rows else 0})"
        )
    return 0
