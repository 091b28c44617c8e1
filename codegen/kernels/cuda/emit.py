"""Write every kernel the renderer emits for a graph to a directory (`archgraph compile SPEC
--emit-kernels DIR`): one CUDA source per fused group, `<node id>.<dtype>.cu`, each a complete
module NVRTC compiles as is, and `index.txt` listing the kernels and their launch configuration.

The directory appears whole or not at all: files are written into a temporary sibling, which
then replaces DIR in one rename (a previous DIR is removed only after that).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from archgraph.codegen.kernels.cuda.groups import DTYPES, graph_kernels

from archgraph.errors import ArchgraphError


def graph_dtype(graph: Any) -> str:
    """The activations' dtype: the first floating graph input's (float32 if none)."""
    for i in graph.inputs:
        if graph[i].type.dtype in DTYPES:
            return graph[i].type.dtype
    return "float32"


def render_files(graph: Any, dtype: str | None = None) -> dict[str, str]:
    """File name -> contents for the graph's kernels (named after the node ids)."""
    dtype = dtype or graph_dtype(graph)
    files: dict[str, str] = {}
    index = [f"# kernels of {graph.name} ({dtype}): file, kernel, launch (grid x block), role"]
    for group in graph_kernels(graph, dtype):
        name = f"{group.node}.{dtype}.cu"
        files[name] = group.module_source
        for k in group.kernels:
            launch = k.launch
            index.append(f"{name}\t{k.name}\t({launch.grid},) x ({launch.block},)\t"
                         f"{k.title or k.kind}")  # fmt: skip
    files["index.txt"] = "\n".join(index) + "\n"
    return files


def write_kernels(graph: Any, directory: str | os.PathLike[str], dtype: str | None = None) -> int:
    """Write the graph's kernel sources to `directory` atomically; returns the number of
    kernel files. ArchgraphError if the path is an existing file."""
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ArchgraphError(
            f"--emit-kernels: {target} exists and is not a directory",
            expected="a new or existing directory",
            found="a file",
        )
    files = render_files(graph, dtype)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp"))
    old: Path | None = None
    try:
        for name, text in files.items():
            (tmp / name).write_text(text)
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old"))
            os.replace(target, old / "dir")
        os.replace(tmp, target)
    except BaseException:
        if old is not None and not target.exists():
            os.replace(old / "dir", target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return len(files) - 1
