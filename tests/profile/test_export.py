"""`archgraph export SPEC --onnx PATH`: the file passes onnx.checker and ONNX Runtime computes
what the compiled module computes, at a batch size other than the one exported with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import onnxruntime as ort
import torch

import archgraph
from archgraph.outputs import write_file
from tests.reference import max_relative_error


def onnx_matches_module(path: Path, name: str) -> float:
    graph = archgraph.load(name)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == graph.inputs
    assert [o.name for o in model.graph.output] == graph.outputs
    module = archgraph.compile(graph).eval()  # deterministic weights: the same as exported
    x = torch.randn(
        3, *graph[graph.inputs[0]].type.shape[1:], generator=torch.Generator().manual_seed(1)
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {graph.inputs[0]: x.numpy()})
    with torch.no_grad():
        expected = module(x)
    return max_relative_error(torch.from_numpy(out), expected)


def test_cli_export_resnet18(tmp_path: Path) -> None:
    path = tmp_path / "resnet18.onnx"
    proc = subprocess.run(
        [sys.executable, "-m", "archgraph.cli", "export", "resnet18", "--onnx", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote ONNX" in proc.stdout
    assert onnx_matches_module(path, "resnet18") <= 1e-4


def test_export_attention_model(tmp_path: Path) -> None:
    path = tmp_path / "vit.onnx"
    write_file(path, archgraph.build("vit_small_patch16_224").onnx())
    assert onnx_matches_module(path, "vit_small_patch16_224") <= 1e-4


def test_failed_export_is_a_user_error_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "out.onnx"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "archgraph.cli",
            "export",
            "resnet18",
            "-O",
            "7",
            "--onnx",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "-O7" in proc.stderr
    assert not path.exists()
