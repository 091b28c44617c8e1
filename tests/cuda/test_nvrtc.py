"""Every kernel the renderer emits for every zoo spec at -O2, in fp32, fp16 and bf16, compiles
under NVRTC for sm_80 and sm_90, with no GPU (the raw NVRTC binding takes an explicit arch).
Identical kernels are compiled once; batches of kernels share a translation unit and run in a
process pool."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
from archgraph.codegen.kernels.cuda.groups import DTYPES, graph_kernels, module_source
from archgraph.codegen.kernels.cuda.nvrtc import KernelCompileError, compile_cubin

ARCHS = ("sm_80", "sm_90")
BATCH = 120


def _compile(job: tuple[list[str], list[str], str]) -> str | None:
    """Compile one batch; None when fine, else NVRTC's log (and the kernels missing)."""
    names, sources, arch = job
    from archgraph.codegen.kernels.cuda.preamble import PREAMBLE

    try:
        cubin = compile_cubin(PREAMBLE + "\n".join(sources), arch)
    except KernelCompileError as e:
        return str(e)[:4000]
    missing = [n for n in names if n.encode() not in cubin]
    return f"kernels missing from the cubin: {missing[:5]}" if missing else None


@pytest.fixture(scope="module")
def zoo_kernels(zoo_o2):  # noqa: ANN001, ANN201 - fixture
    kernels, where = {}, {}
    for spec, graph in zoo_o2.items():
        for dtype in DTYPES:
            # a spec may have no fused group (the Poincaré ops stay torch calls); which kernel
            # kinds the zoo must cover is test_the_zoo_covers_every_kernel_kind's
            for group in graph_kernels(graph, dtype):
                for k in group.kernels:
                    kernels.setdefault(k.name, k)
                    where.setdefault(k.name, f"{spec} {group.node} ({dtype}): {k.title or k.kind}")
    assert kernels, "no kernels rendered for the zoo at -O2"
    return kernels, where


def test_the_zoo_covers_every_kernel_kind(zoo_kernels) -> None:  # noqa: ANN001
    kernels, where = zoo_kernels
    roles = {where[name].split(": ", 1)[1].replace(" (scalar fallback)", "") for name in kernels}
    for role in ("epilogue forward", "epilogue backward", "prologue forward",
                 "pointwise chain forward", "pointwise chain backward"):  # fmt: skip
        assert role in roles
    assert any(r.startswith("write into channels") for r in roles)
    kinds = {k.kind for k in kernels.values()}
    assert {"layernorm_fwd", "layernorm_bwd", "softmax_fwd", "softmax_bwd"} <= kinds
    dtypes = {d for k in kernels.values() for d in _dtypes(k)}
    assert dtypes == set(DTYPES)
    assert any(getattr(k, "vec", 1) > 1 for k in kernels.values())
    assert len(kernels) > 1000


def _dtypes(k) -> set[str]:  # noqa: ANN001
    if hasattr(k, "inputs"):
        return {t.dtype for t in (*k.inputs, *k.outputs)}
    return {k.dtype}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_zoo_kernel_compiles(zoo_kernels, arch: str) -> None:  # noqa: ANN001
    kernels, where = zoo_kernels
    items = sorted(kernels.items())
    jobs = []
    for i in range(0, len(items), BATCH):
        chunk = items[i : i + BATCH]
        jobs.append(([n for n, _ in chunk], [k.source for _, k in chunk], arch))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        errors = [
            (job, err) for job, err in zip(jobs, pool.map(_compile, jobs), strict=True) if err
        ]
    if errors:
        (names, sources, _), err = errors[0]
        # find the first kernel of the failing batch that fails on its own, for the message
        for name, source in zip(names, sources, strict=True):
            alone = _compile(([name], [source], arch))
            if alone:
                pytest.fail(f"{len(errors)} batch(es) failed; e.g. {where[name]}:\n{alone}")
        pytest.fail(f"{len(errors)} batch(es) failed:\n{err}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_emitted_modules_compile_as_written(zoo_o2, dtype: str) -> None:  # noqa: ANN001
    """The per-group files of --emit-kernels are complete translation units (one per op)."""
    seen = set()
    for graph in zoo_o2.values():
        for group in graph_kernels(graph, dtype):
            if group.op in seen:
                continue
            seen.add(group.op)
            cubin = compile_cubin(group.module_source, "sm_80")
            assert all(k.name.encode() in cubin for k in group.kernels)
    assert {"conv2d_fused", "linear_fused", "fused_pointwise", "buffer_write", "layernorm"} <= seen


def test_nvrtc_rejects_a_broken_kernel() -> None:
    source = module_source([]) + 'extern "C" __global__ void k(float* y) { y[0] = undefined_name; }'
    with pytest.raises(KernelCompileError, match="undefined_name"):
        compile_cubin(source, "sm_90")


def test_an_unknown_arch_is_an_error() -> None:
    with pytest.raises(Exception, match="INVALID_OPTION|sm_10"):
        compile_cubin(module_source([]), "sm_10")
