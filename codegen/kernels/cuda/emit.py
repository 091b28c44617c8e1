"""Every kernel the renderer emits for a graph, as the files of `archgraph compile SPEC
--emit-kernels DIR`: one CUDA source per fused group, `<node id>.<dtype>.cu`, each a complete
module NVRTC compiles as is, and `index.txt` listing the kernels and their launch configuration.
Its first line starts with `# archgraph`, which marks DIR as archgraph's, so a later run may
replace it (archgraph.outputs writes the folder, whole or not at all).
"""

from __future__ import annotations

from typing import Any

from archgraph.codegen.kernels.cuda.groups import DTYPES, graph_kernels


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
    index = [
        f"# archgraph kernels of {graph.name} ({dtype}): file, kernel, launch (grid x block), role"
    ]
    for group in graph_kernels(graph, dtype):
        name = f"{group.node}.{dtype}.cu"
        files[name] = group.module_source
        for k in group.kernels:
            launch = k.launch
            index.append(f"{name}\t{k.name}\t({launch.grid},) x ({launch.block},)\t"
                         f"{k.title or k.kind}")  # fmt: skip
    files["index.txt"] = "\n".join(index) + "\n"
    return files
