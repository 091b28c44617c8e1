"""`archgraph train`: a run with a schedule prints its results table and checkpoints; bad data
folders, specs, checkpoints and options exit 2 with a located message and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from archgraph.cli import main
from archgraph.train.checkpoint import load_checkpoint
from tests.train.helpers import SPEC

TINY = [str(SPEC), "--set", "width=4", "--set", "image_size=8"]


def test_train_prints_a_table_and_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "run.pt"
    args = [*TINY, "--epochs", "2", "--batch", "64"]
    args += ["--sparse-schedule", "gmp", "--sparsity", "0.5", "--checkpoint", str(ckpt)]
    assert main(["train", *args, "--stop-after", "1"]) == 0
    out = capsys.readouterr().out
    assert "1438 training / 359 validation samples of digits" in out
    assert "val acc" in out and "sparsity" in out and "MACs/sample" in out
    assert load_checkpoint(ckpt)["epoch"] == 1
    assert main(["train", *args, "--resume"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("│ ")]
    assert [r.split("│")[1].strip() for r in rows] == ["1", "2"]
    assert float(rows[-1].split("│")[5]) == pytest.approx(0.5, abs=0.01)  # sparsity column


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--data", "/nonexistent/dir"], "/nonexistent/dir: error: the training data is not a dir"),
        (["--sparsity", "0.5"], "--sparse-schedule and --sparsity go together"),
        (["-O", "3"], "-O3"),
        (
            ["--resume", "--checkpoint", "/nonexistent/c.pt"],
            "/nonexistent/c.pt: error: no checkpoint",
        ),
        (["--set", "num_classes=7"], "does not output one logit per class"),
        (["--rewrite", "sparse-wide"], "rewrite 'sparse-wide' needs a value"),
    ],
)
def test_bad_input_exits_2_located(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *TINY, "--epochs", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_spec_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("archgraph: 1\nname: bad\ninputs:\n  x: [3, 8, 8]\nnodes:\n  c: {op: conv9d}\n")
    assert main(["train", str(spec), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:6:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "extra, sparsity",
    [
        # k = 2 on the width-4 net: kept = dense weights 108 + 2*144 + 288 + 576 + 32 + 1152
        # + 2304 + 128 + 160 = 5036 of the widened 216 + 2*576 + 1152 + 2304 + 128 + 4608 + 9216
        # + 512 + 320 = 19608
        (["--rewrite", "sparse-wide=0.75"], 1 - 5036 / 19608),
        (["--prune", "weights=0.5"], 0.5),
    ],
)
def test_masks_from_rewrites_and_prunes_stay_through_training(
    extra: list[str], sparsity: float, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", *TINY, "--epochs", "1", "--batch", "64", *extra]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│ ")]
    assert float(rows[-1].split("│")[5]) == pytest.approx(sparsity, abs=6e-4)
