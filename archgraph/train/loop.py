"""The training loop: SGD with momentum and a cosine learning rate over the whole run, an optional
sparse schedule (archgraph.train.schedules) or fixed masks, one row of results per epoch, and a
checkpoint after every epoch that `resume=True` continues from exactly.

    result = train(graph, load_data("digits", graph), TrainConfig(epochs=5, schedule="gmp",
                   sparsity=0.9))   # result.module, result.rows (one EpochRow per epoch)

Each epoch's batches come from a generator seeded by (seed, epoch), so a resumed run sees the
batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import fx, nn

from archgraph.errors import ArchgraphError, Loc
from archgraph.ir.graph import Graph
from archgraph.profile.costs import node_costs
from archgraph.train.checkpoint import load_checkpoint, save_checkpoint
from archgraph.train.data import Data
from archgraph.train.schedules import SparseSchedule, check_schedule, make_schedule


def compile_for_training(graph: Graph, opt_level: int, *, seed: int = 0) -> fx.GraphModule:
    """The one place the trainer compiles a graph: archgraph.compile in train mode, so every
    level trains like -O0 (archgraph.passes.pipelines' train pipelines)."""
    import archgraph

    return archgraph.compile(graph, opt_level, seed=seed, mode="train")


@dataclass(frozen=True)
class TrainConfig:
    """What a run is; a checkpoint resumes only the same config (epochs included)."""

    epochs: int
    batch: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    opt_level: int = 0
    schedule: str | None = None  # a SCHEDULES name, or None (dense, or the fixed masks given)
    sparsity: float = 0.0

    def check(self) -> None:
        if self.epochs < 1 or self.batch < 1 or not self.lr > 0:
            raise ArchgraphError(
                "training needs --epochs >= 1, --batch >= 1 and --lr > 0",
                found=f"epochs {self.epochs}, batch {self.batch}, lr {self.lr}",
            )
        if self.schedule is not None:
            check_schedule(self.schedule)


@dataclass(frozen=True)
class EpochRow:
    epoch: int
    loss: float  # mean training loss over the epoch
    train_acc: float  # accuracy on the epoch's training batches, as they were trained
    val_acc: float  # held-out accuracy after the epoch (eval mode)
    sparsity: float  # fraction of exact zeros in the prunable (masked) weights
    macs: int  # per sample; masked layers' MACs scaled by their density


@dataclass
class TrainResult:
    module: nn.Module
    rows: list[EpochRow] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the masked weights


def measured_sparsity(module: nn.Module, keys: list[str]) -> float:
    """Exact zeros among the weights `keys`, measured on the module's trained tensors."""
    params = dict(module.named_parameters())
    total = sum(params[k].numel() for k in keys)
    zeros = sum(int((params[k] == 0).sum()) for k in keys)
    return zeros / total if total else 0.0


def effective_macs(graph: Graph, module: nn.Module, keys: list[str]) -> int:
    """MACs per sample with each masked layer's MACs scaled by its weight's nonzero fraction."""
    params = dict(module.named_parameters())
    masked = {k.removesuffix(".weight"): params[k] for k in keys}
    batch = graph[graph.inputs[0]].type.shape[0]
    total = 0.0
    for c in node_costs(graph):
        macs = c.macs or 0
        w = masked.get(c.id)
        total += macs * (int(w.count_nonzero()) / w.numel() if w is not None else 1.0)
    return round(total / batch)


def _batches(n: int, batch: int, seed: int, epoch: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=gen)
    return [order[i : i + batch] for i in range(0, n - batch + 1, batch)]


@torch.no_grad()
def accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 256) -> float:
    was = module.training
    module.eval()
    correct = sum(
        int((module(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
        for i in range(0, len(y), batch)
    )
    module.train(was)
    return correct / len(y)


StepHook = Callable[[int, int, int, float], None]  # epoch, step in epoch, steps per epoch, loss


def train(
    graph: Graph,
    data: Data,
    config: TrainConfig,
    *,
    masks: Mapping[str, torch.Tensor] | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    on_step: StepHook | None = None,
    on_epoch: Callable[[EpochRow], None] | None = None,
) -> TrainResult:
    """Train `graph` on `data`. `masks` (weight key -> 0/1 tensor) are kept fixed through
    training (one-shot pruned weights, sparse-wide layers); `config.schedule` names a sparse
    schedule instead. With `checkpoint`, the state is saved atomically after every epoch;
    `resume` continues from it. `stop_after` ends the run after that epoch (a checkpointed
    run can be resumed to the full `config.epochs`)."""
    from archgraph.passes.prune.schedule import StaticSparsity

    config.check()
    if masks is not None and config.schedule is not None:
        raise ArchgraphError(
            "a sparse schedule and fixed masks (pruned weights, sparse-wide) do not combine",
            found=f"--sparse-schedule {config.schedule} and masks on {len(masks)} weights",
        )
    if resume and checkpoint is None:
        raise ArchgraphError("--resume needs --checkpoint PATH")
    steps_per_epoch = len(data.y_train) // config.batch
    if steps_per_epoch == 0:
        raise ArchgraphError(
            "the batch is larger than the training set",
            found=f"batch {config.batch}, {len(data.y_train)} training samples",
        )
    total_steps = steps_per_epoch * config.epochs
    torch.manual_seed(config.seed)
    module = compile_for_training(graph, config.opt_level, seed=config.seed)
    opt = torch.optim.SGD(
        module.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    lr_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
    schedule: SparseSchedule | None = None
    if config.schedule is not None:
        schedule = make_schedule(
            config.schedule,
            module,
            opt,
            sparsity=config.sparsity,
            total_steps=total_steps,
            seed=config.seed,
        )
    elif masks is not None:
        schedule = StaticSparsity(module, opt, masks)
    keys = schedule.keys if schedule is not None else []
    result = TrainResult(module, [], keys)
    start = 0
    if resume:
        assert checkpoint is not None
        start = _restore(checkpoint, graph, config, module, opt, lr_schedule, schedule, result)
    last = config.epochs if stop_after is None else min(stop_after, config.epochs)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(start, last):
        module.train()
        total_loss, correct, seen = 0.0, 0, 0
        batches = _batches(len(data.y_train), config.batch, config.seed, epoch)
        for i, idx in enumerate(batches):
            x, y = data.x_train[idx], data.y_train[idx]
            out = module(x)
            loss = loss_fn(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()  # the masks are re-applied by the optimizer's post-step hook
            if schedule is not None:
                schedule.step(epoch * steps_per_epoch + i)
            lr_schedule.step()
            total_loss += loss.item() * len(y)
            correct += int((out.argmax(1) == y).sum())
            seen += len(y)
            if on_step is not None:
                on_step(epoch, i + 1, len(batches), loss.item())
        row = EpochRow(
            epoch + 1,
            total_loss / seen,
            correct / seen,
            accuracy(module, data.x_val, data.y_val),
            measured_sparsity(module, keys),
            effective_macs(graph, module, keys),
        )
        result.rows.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if checkpoint is not None:
            save_checkpoint(
                checkpoint,
                {
                    "graph": graph.name,
                    "config": asdict(config),
                    "epoch": epoch + 1,
                    "model": module.state_dict(),
                    "optimizer": opt.state_dict(),
                    "lr_schedule": lr_schedule.state_dict(),
                    "sparse": None if schedule is None else schedule.state_dict(),
                    "rows": [asdict(r) for r in result.rows],
                    "rng": torch.get_rng_state(),
                },
            )
    return result


def _restore(
    path: str | Path,
    graph: Graph,
    config: TrainConfig,
    module: nn.Module,
    opt: torch.optim.Optimizer,
    lr_schedule: torch.optim.lr_scheduler.LRScheduler,
    schedule: SparseSchedule | None,
    result: TrainResult,
) -> int:
    """Load a checkpoint into the fresh run's objects; returns the epochs it had completed."""
    state = load_checkpoint(path)
    where = Loc(str(path))
    saved = state.get("config", {})
    differ = {k: (saved.get(k), v) for k, v in asdict(config).items() if saved.get(k) != v}
    if state.get("graph") != graph.name or differ:
        found = [f"{k}: {a!r} (checkpoint) vs {b!r} (now)" for k, (a, b) in differ.items()]
        if state.get("graph") != graph.name:
            found.insert(0, f"spec: {state.get('graph')!r} (checkpoint) vs {graph.name!r} (now)")
        raise ArchgraphError(
            "the checkpoint belongs to a different training run",
            loc=where,
            expected="the same spec and options as the run that wrote it",
            found="; ".join(found),
        )
    try:
        module.load_state_dict(state["model"], strict=True)
        opt.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise ArchgraphError(
            "the checkpoint does not fit the model",
            loc=where,
            found=" ".join(line.strip() for line in str(e).splitlines()[:3])[:400],
            hint="was the spec changed since the checkpoint was written?",
        ) from None
    lr_schedule.load_state_dict(state["lr_schedule"])
    if schedule is not None:
        schedule.load_state_dict(state["sparse"])
    torch.set_rng_state(state["rng"])
    result.rows.extend(EpochRow(**r) for r in state["rows"])
    return int(state["epoch"])
