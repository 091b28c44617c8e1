"""The runtime without a GPU: CuPy never imported on the CPU path, NVRTC cubins cached on disk
by source hash, launch configuration bounded and visible in the source, device dispatch, whole
-O2 zoo models through the kernel path (host-run) equal to -O0, and `--emit-kernels`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from archgraph.codegen.kernels.cuda import dispatch, nvrtc, runtime
from archgraph.codegen.kernels.cuda.groups import DTYPES, graph_kernels, module_source
from archgraph.codegen.kernels.cuda.pointwise import PointwiseKernel

import archgraph
from archgraph.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_compiling_and_running_on_cpu_never_imports_cupy() -> None:
    code = (
        "import sys, torch, archgraph\n"
        "m = archgraph.compile(archgraph.load('resnet18'), 2)\n"
        "g = archgraph.compile(archgraph.load('densenet121'), 2)\n"
        "with torch.no_grad(): m(torch.randn(1, 3, 224, 224))\n"
        "m(torch.randn(1, 3, 224, 224)).sum().backward()\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('cupy', 'cupy_backends')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=300, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]", out.stdout


def test_cubins_are_cached_on_disk_by_source_hash(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ARCHGRAPH_KERNEL_CACHE", str(tmp_path / "kernels"))
    graph = archgraph.compile(archgraph.load("resnet18"), 2).meta["archgraph_ir"]
    kernel = graph_kernels(graph)[0].kernels[0]
    source = module_source([kernel])
    path = runtime.cubin_path(source, "sm_90")
    assert path.parent == tmp_path / "kernels" and path.suffix == ".cubin"
    assert kernel.name.encode() in path.read_bytes()
    # a second request reads the file: NVRTC is not called again
    monkeypatch.setattr(runtime, "compile_cubin", lambda *a: pytest.fail("recompiled"))
    assert runtime.cubin_path(source, "sm_90") == path
    # another arch or another source is another entry
    assert runtime.cache_key(source, "sm_80") != runtime.cache_key(source, "sm_90")
    assert runtime.cache_key(source + " ", "sm_90") != runtime.cache_key(source, "sm_90")
    assert not list((tmp_path / "kernels").glob("*.tmp"))


def test_launch_configuration_is_bounded_and_in_the_source(zoo_o2) -> None:  # noqa: ANN001
    seen = 0
    for graph in zoo_o2.values():
        for group in graph_kernels(graph, "float32"):
            for k in group.kernels:
                launch = k.launch
                assert 32 <= launch.block <= 1024 and launch.block % 32 == 0
                assert f"// launch: grid ({launch.grid},) x block ({launch.block},)" in k.source
                assert f"__launch_bounds__({launch.block})" in k.source
                if isinstance(k, PointwiseKernel):
                    assert launch.grid * launch.block * k.vec >= k.numel
                    assert (launch.grid - 1) * launch.block * k.vec < k.numel
                else:
                    assert launch.grid == k.rows
                seen += 1
    assert seen > 500


def test_a_row_of_4096_uses_1024_threads() -> None:
    from archgraph.codegen.kernels.cuda.rowwise import RowKernel

    assert RowKernel("softmax_fwd", 2, 4096).launch.block == 1024
    assert RowKernel("softmax_fwd", 2, 100_000).launch.block == 1024
    assert RowKernel("softmax_fwd", 2, 7).launch.block == 32


def test_dispatch_takes_the_cpu_path_off_cuda() -> None:
    x = torch.randn(2, 3)
    assert dispatch.launcher_for(x) is None
    with dispatch.simulate():
        assert dispatch.launcher_for(x) is not None
        assert dispatch.launcher_for(x.to(torch.int64)) is None
    if not torch.cuda.is_available():
        assert not runtime.available()


SIMULATED = ["resnet18", "ese_vovnet19b_dw", "vit_small_patch16_224", "autoint", "pvt_v2_b0"]


@pytest.mark.parametrize("name", SIMULATED)
def test_zoo_model_through_the_kernel_path_equals_O0(name: str) -> None:
    """A whole -O2 model with every fused group run by its generated kernels (on the host)
    against the unoptimized -O0 module."""
    graph = archgraph.load(name)
    m0, m2 = archgraph.compile(graph, 0).eval(), archgraph.compile(graph, 2).eval()
    gen = torch.Generator().manual_seed(0)
    inputs = []
    for i in graph.inputs:
        t = graph[i].type
        if t.dtype == "int64":
            inputs.append(torch.randint(0, 2, t.shape, generator=gen))
        else:
            inputs.append(torch.randn(t.shape, generator=gen))
    with torch.no_grad():
        want = m0(*inputs)
        with dispatch.simulate():
            got = m2(*inputs)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


def test_emit_kernels_writes_one_module_per_group(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "kernels"
    assert main(["compile", "resnet50", "-O2", "--emit-kernels", str(out)]) == 0
    graph = archgraph.compile(archgraph.load("resnet50"), 2).meta["archgraph_ir"]
    groups = graph_kernels(graph)
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([f"{g.node}.float32.cu" for g in groups] + ["index.txt"])
    assert "layer1.0.conv3.float32.cu" in files  # the residual add + ReLU of the first block
    text = (out / "layer1.0.conv3.float32.cu").read_text()
    assert "forward: acc -> add(y=bias) -> add(y=residual) -> relu" in text
    assert nvrtc.compile_cubin(text, "sm_90")
    index = (out / "index.txt").read_text().splitlines()
    assert len(index) == 1 + sum(len(g.kernels) for g in groups)
    # re-emitting replaces the directory whole
    (out / "stale.cu").write_text("old")
    assert main(["compile", "resnet18", "-O2", "--emit-kernels", str(out)]) == 0
    assert not (out / "stale.cu").exists() and (out / "layer1.0.conv2.float32.cu").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["kernels"]  # no temporaries left


def test_emit_kernels_leaves_nothing_on_error(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from archgraph.outputs import write_folder

    out = tmp_path / "kernels"
    assert main(["compile", "no_such_spec", "-O2", "--emit-kernels", str(out)]) == 2
    assert not out.exists()
    # a write failing after another succeeded: no directory, no temporaries
    failing = {"index.txt": "# archgraph kernels", "a.cu": "x", "no/such.cu": "y"}
    with pytest.raises(OSError):
        write_folder(out, failing)
    assert list(tmp_path.iterdir()) == []
    # an existing directory (archgraph's) survives a failed re-emission unchanged
    out.mkdir()
    (out / "index.txt").write_text("# archgraph kernels\n")
    (out / "keep.cu").write_text("kept")
    with pytest.raises(OSError):
        write_folder(out, failing)
    assert [p.name for p in tmp_path.iterdir()] == ["kernels"]
    assert (out / "keep.cu").read_text() == "kept"
    file = tmp_path / "file"
    file.write_text("")
    assert main(["compile", "resnet18", "--emit-kernels", str(file)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_every_dtype_renders(zoo_o2) -> None:  # noqa: ANN001
    graph = zoo_o2["resnet18"]
    for dtype in DTYPES:
        sources = [g.module_source for g in graph_kernels(graph, dtype)]
        c_type = {
            "float32": "const float*",
            "float16": "const ag_half*",
            "bfloat16": "const ag_bf16*",
        }
        assert all(c_type[dtype] in s for s in sources)
