"""Compile and launch generated kernels on the GPU through CuPy.

- CuPy is imported here, lazily, on the first launch: a CPU-only process never loads it.
- Kernels are compiled by NVRTC (nvrtc.py) for the device's architecture and cached by the
  hash of (source, arch, NVRTC version, options): in this process (loaded modules) and on disk
  (cubins under ~/.cache/archgraph/kernels, or $ARCHGRAPH_KERNEL_CACHE), written atomically.
- Launches go to PyTorch's current CUDA stream; tensors are handed over without copies through
  `__cuda_array_interface__` (bf16 tensors as int16 views: CuPy has no bf16, the kernel only
  needs the pointer).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from archgraph.codegen.kernels.cuda.groups import Kernel, module_source
from archgraph.codegen.kernels.cuda.nvrtc import OPTIONS, compile_cubin, version

_MODULES: dict[tuple[str, int], Any] = {}


@lru_cache(maxsize=1)
def available() -> bool:
    """A CUDA device is visible to torch and CuPy is installed (imports nothing else)."""
    if not torch.cuda.is_available():
        return False
    import importlib.util

    return importlib.util.find_spec("cupy") is not None


def cache_dir() -> Path:
    env = os.environ.get("ARCHGRAPH_KERNEL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "archgraph" / "kernels"


def arch_of(device: torch.device) -> str:
    major, minor = torch.cuda.get_device_capability(device)
    return f"sm_{major}{minor}"


def cache_key(source: str, arch: str) -> str:
    text = "\n".join([source, arch, repr(version()), repr(OPTIONS)])
    return hashlib.sha256(text.encode()).hexdigest()


def cubin_path(source: str, arch: str) -> Path:
    """The cached cubin of a module, compiled and written (atomically) if missing."""
    path = cache_dir() / f"{cache_key(source, arch)}.cubin"
    if not path.exists():
        cubin = compile_cubin(source, arch)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(cubin)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def function(kernel: Kernel, device: torch.device) -> Any:
    """The loaded CuPy RawKernel of `kernel` on `device`."""
    import cupy

    source = module_source([kernel])
    index = device.index if device.index is not None else torch.cuda.current_device()
    key = (hashlib.sha256(source.encode()).hexdigest(), index)
    module = _MODULES.get(key)
    if module is None:
        path = cubin_path(source, arch_of(torch.device("cuda", index)))
        with cupy.cuda.Device(index):
            module = _MODULES[key] = cupy.RawModule(path=str(path))
    return module.get_function(kernel.name)


def _as_cupy(t: torch.Tensor) -> Any:
    import cupy

    t = t.detach()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return cupy.asarray(t)


def _stream(device: torch.device) -> Any:
    import cupy

    stream = torch.cuda.current_stream(device)
    from_external = getattr(cupy.cuda.Stream, "from_external", None)
    if from_external is not None and hasattr(stream, "__cuda_stream__"):
        return from_external(stream)  # the CUDA stream protocol (CuPy >= 14)
    return cupy.cuda.ExternalStream(stream.cuda_stream, device.index)


def launch(kernel: Kernel, tensors: list[torch.Tensor]) -> None:
    """Run `kernel` on PyTorch's current stream with `tensors` as its arguments, in order."""
    import cupy

    device = tensors[0].device
    fn = function(kernel, device)
    launch_ = kernel.launch
    with cupy.cuda.Device(device.index), _stream(device):
        fn((launch_.grid,), (launch_.block,), tuple(_as_cupy(t) for t in tensors))
