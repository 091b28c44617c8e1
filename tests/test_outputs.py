"""Outputs never destroy a user's files: every output path is checked before any work (an input,
another output, a folder archgraph did not write are refused with exit 2, naming the option),
and a folder archgraph wrote may be written again. Each test here failed before archgraph had
one output writer (`--emit-kernels .` emptied the working directory; `--emit-spec` and every
other path option overwrote the input spec)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from archgraph.cli import main

SPEC = """\
name: tiny
inputs: {x: [3, 8, 8]}
nodes:
  conv: {op: conv2d, in: x, out_channels: 4, kernel_size: 3, padding: 1}
  act: {op: relu}
  pool: {op: adaptive_avgpool2d, output_size: 1}
  flat: {op: flatten}
  fc: {op: linear, out_features: 2}
outputs: [fc]
"""
PLUGIN = "X = 1  # registers nothing\n"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's folder: a spec, a plugin and a file of theirs; the current directory."""
    (tmp_path / "net.yaml").write_text(SPEC)
    (tmp_path / "plug.py").write_text(PLUGIN)
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def refused(args: list[str], capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.startswith("error: --")
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_emit_kernels_into_the_working_directory_keeps_every_file(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(work)
    refused(["compile", "net.yaml", "-O2", "--emit-kernels", "."], capsys, "--emit-kernels .")
    assert snapshot(work) == before


def test_emit_kernels_into_a_folder_of_the_users_keeps_their_files(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "mine").mkdir()
    (work / "mine" / "a.cu").write_text("my kernel")
    before = snapshot(work)
    refused(
        ["compile", "net.yaml", "-O2", "--emit-kernels", "mine"],
        capsys,
        "--emit-kernels mine",
        "archgraph did not write",
        "hint: name a new or empty folder",
    )
    assert snapshot(work) == before


def test_a_folder_archgraph_wrote_is_written_again(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "empty").mkdir()  # an empty folder is fine too
    assert main(["compile", "net.yaml", "-O2", "--emit-kernels", "empty"]) == 0
    assert main(["compile", "net.yaml", "-O2", "--emit-kernels", "k"]) == 0
    first = snapshot(work / "k")
    assert first == snapshot(work / "empty")
    assert first["index.txt"].startswith(b"# archgraph") and any(n.endswith(".cu") for n in first)
    (work / "k" / "stale.cu").write_text("from an older run")
    assert main(["compile", "net.yaml", "-O2", "--emit-kernels", "k"]) == 0
    assert snapshot(work / "k") == first  # replaced whole
    assert sorted(p.name for p in work.iterdir()) == sorted(
        ["net.yaml", "plug.py", "notes.txt", "k", "empty"]
    )  # no temporaries left


def test_emit_spec_onto_the_input_is_refused_and_the_input_unchanged(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.link(work / "net.yaml", work / "hard.yaml")
    (work / "soft.yaml").symlink_to(work / "net.yaml")
    before = snapshot(work)
    for path in ["net.yaml", "./net.yaml", str(work / "net.yaml"), "hard.yaml", "soft.yaml"]:
        err = refused(
            ["compile", "net.yaml", "--prune", "channels=0.5", "--emit-spec", path],
            capsys,
            f"--emit-spec {path}",
            "input spec",
        )
        assert "hint: write the output to another path" in err
    assert snapshot(work) == before


@pytest.mark.parametrize(
    "option", ["--json", "--report", "--trace", "--dot", "--emit-code", "--emit-kernels"]
)
def test_every_path_option_onto_the_input_is_refused(
    option: str, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(work)
    refused(["compile", "net.yaml", option, "net.yaml"], capsys, f"{option} net.yaml")
    refused(["compile", "net.yaml", "--plugin", "plug.py", option, "plug.py"], capsys, "plugin")
    assert snapshot(work) == before


def test_export_onto_the_input_is_refused(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(work)
    refused(["export", "net.yaml", "--onnx", "net.yaml"], capsys, "--onnx net.yaml", "input spec")
    assert snapshot(work) == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--json", "p.json", "--dot", "p.json"], "--dot p.json: --json p.json writes the same"),
        (["--emit-kernels", "k", "--json", "k/p.json"], "inside the folder"),
        (["--json", "p.json", "--emit-code", "no/such/dir/m.py"], "does not exist"),
        (["--json", "p.json", "--report", "."], "is a folder"),
        (["--json", "p.json", "--prune", "channels=2"], "out of range"),  # not a path option
    ],
)
def test_one_bad_option_and_nothing_is_written(
    args: list[str], fragment: str, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(work)
    refused(["compile", "net.yaml", *args], capsys, fragment)
    assert snapshot(work) == before


def test_a_failed_write_leaves_no_partial_file(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (work / "m.py").write_text("previous code")
    (work / "k").mkdir()
    (work / "k" / "index.txt").write_text("# archgraph kernels of an earlier run\n")
    before = snapshot(work)

    def full(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("archgraph.outputs.os.replace", full)
    for option, path in [("--emit-code", "m.py"), ("--emit-kernels", "k")]:
        assert main(["compile", "net.yaml", "-O2", option, path]) == 2
        assert "No space left on device" in capsys.readouterr().err
        assert snapshot(work) == before
        assert sorted(p.name for p in work.iterdir()) == sorted(
            ["net.yaml", "plug.py", "notes.txt", "m.py", "k"]
        )
