"""Compile CUDA C to a cubin with NVRTC directly (cupy_backends' raw binding), for an explicit
architecture: this needs no GPU, unlike CuPy's compiler, which asks the device for its arch.
Used by the runtime (with the device's arch) and by the tests (sm_80 and sm_90 on any machine).
"""

from __future__ import annotations

from collections.abc import Sequence

OPTIONS = ("--std=c++17",)


class KernelCompileError(RuntimeError):
    """NVRTC rejected a generated source; the message holds its log."""


def version() -> tuple[int, int]:
    from cupy_backends.cuda.libs import nvrtc

    return tuple(nvrtc.getVersion())  # type: ignore[return-value]


def compile_cubin(source: str, arch: str, name: str = "archgraph.cu",
                  options: Sequence[str] = OPTIONS) -> bytes:  # fmt: skip
    """The cubin of `source` for `arch` (e.g. "sm_90"); KernelCompileError with NVRTC's log."""
    from cupy_backends.cuda.libs import nvrtc

    prog = nvrtc.createProgram(source, name, [], [])
    try:
        try:
            nvrtc.compileProgram(prog, (f"--gpu-architecture={arch}", *options))
        except nvrtc.NVRTCError as e:
            log = nvrtc.getProgramLog(prog)
            raise KernelCompileError(f"NVRTC failed for {arch} ({e}):\n{log}") from None
        return nvrtc.getCUBIN(prog)
    finally:
        nvrtc.destroyProgram(prog)
