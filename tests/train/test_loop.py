"""The training loop: resuming from a checkpoint continues exactly; sparsity is measured on the
trained weights; checkpoints are written whole or not at all; only -O0 trains on this branch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archgraph.errors import ArchgraphError
from archgraph.train.checkpoint import load_checkpoint, save_checkpoint
from archgraph.train.loop import TrainConfig, compile_for_training, train
from tests.train.helpers import tiny_data, tiny_graph


def test_resume_continues_exactly(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    graph = tiny_graph()
    data = tiny_data(graph)
    config = TrainConfig(epochs=2, schedule="granet", sparsity=0.5)
    whole = train(graph, data, config, checkpoint=tmp_path / "whole.pt")
    part = tmp_path / "part.pt"
    first = train(graph, data, config, checkpoint=part, stop_after=1)
    assert len(first.rows) == 1 and load_checkpoint(part)["epoch"] == 1
    resumed = train(graph, data, config, checkpoint=part, resume=True)
    assert [r.epoch for r in resumed.rows] == [1, 2]
    assert resumed.rows == whole.rows
    a, b = whole.module.state_dict(), resumed.module.state_dict()
    assert a.keys() == b.keys() and any(k.endswith("_mask") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the first epoch alone differs from both epochs: the comparison can fail
    assert not torch.equal(first.module.state_dict()["fc.weight"], a["fc.weight"])


def test_resume_refuses_another_run(tmp_path: Path) -> None:
    graph = tiny_graph()
    data = tiny_data(graph, 64)
    path = tmp_path / "c.pt"
    train(graph, data, TrainConfig(epochs=2), checkpoint=path, stop_after=1)
    with pytest.raises(ArchgraphError, match="different training run") as e:
        train(graph, data, TrainConfig(epochs=2, lr=0.1), checkpoint=path, resume=True)
    assert str(path) in str(e.value) and "lr" in str(e.value)


@pytest.mark.parametrize("schedule", ["gmp", "granet", "erk"])
def test_sparsity_is_measured_on_trained_weights(schedule: str) -> None:
    torch.set_num_threads(1)
    graph = tiny_graph()
    result = train(graph, tiny_data(graph), TrainConfig(epochs=2, schedule=schedule, sparsity=0.75))
    params = dict(result.module.named_parameters())
    zeros = sum(int((params[k] == 0).sum()) for k in result.keys)
    total = sum(params[k].numel() for k in result.keys)
    # every conv and the classifier are masked; 3/4 of their weights are exactly zero
    assert len(result.keys) == 10 and "fc.weight" in result.keys
    assert zeros / total == pytest.approx(0.75, abs=0.01)
    assert result.rows[-1].sparsity == pytest.approx(zeros / total)
    dense = train(graph, tiny_data(graph, 64), TrainConfig(epochs=1)).rows[-1]
    assert result.rows[-1].macs < dense.macs


def test_checkpoint_is_written_whole_or_not_at_all(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(3)})
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises on a lambda
        save_checkpoint(path, {"epoch": 2, "bad": lambda: 0})
    state = load_checkpoint(path)
    assert state["epoch"] == 1 and torch.equal(state["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary left


def test_bad_checkpoints_are_located_errors(tmp_path: Path) -> None:
    with pytest.raises(ArchgraphError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ArchgraphError, match="cannot read the checkpoint") as e:
        load_checkpoint(junk)
    assert str(junk) in str(e.value)


def test_every_level_trains_like_o0() -> None:
    torch.set_num_threads(1)
    graph = tiny_graph()
    data = tiny_data(graph)
    assert all(compile_for_training(graph, level).training for level in (0, 1, 2))
    runs = [train(graph, data, TrainConfig(epochs=2, opt_level=level)) for level in (0, 2)]
    (o0, o2) = ([r.loss for r in run.rows] for run in runs)
    assert o0[-1] < o0[0]  # it learns
    assert o2 == pytest.approx(o0, rel=1e-3)
