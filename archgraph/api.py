"""The Python API: load a spec, compile a graph; `build` is the one orchestration path (load,
transform, compile once, cost and measure) that the CLI is a thin shell over."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import fx

# compile and the meta keys it records are the API's (archgraph.compile); they live in the back
# end's layer so that the profiler, below the API, can time compile
from archgraph.codegen.compile import IR_KEY as IR_KEY
from archgraph.codegen.compile import OPT_LEVELS as OPT_LEVELS
from archgraph.codegen.compile import PASS_TIMES_KEY as PASS_TIMES_KEY
from archgraph.codegen.compile import PHASE_TIMES_KEY as PHASE_TIMES_KEY
from archgraph.codegen.compile import REPORTS_KEY as REPORTS_KEY
from archgraph.codegen.compile import compile_graph as compile  # noqa: A004, F401
from archgraph.errors import ArchgraphError
from archgraph.ir.graph import Graph
from archgraph.passes import PassReport
from archgraph.spec import Limits, load_spec, zoo_names

if TYPE_CHECKING:
    from archgraph.passes.prune.options import PruneOption
    from archgraph.profile.report import Profile


def load(source: str | Path, *, batch: int = 1, limits: Limits = Limits(), **params: Any) -> Graph:
    """Load a spec file, or a zoo spec by name, into a validated Graph.

    `params` override the spec's `params:` (e.g. num_classes=10); `batch` is the batch size the
    graph's types are inferred with (compiled modules accept any batch size).
    """
    return load_spec(source, batch=batch, params=params, limits=limits)


def zoo() -> list[str]:
    """Names of the built-in specs."""
    return zoo_names()


@dataclass(frozen=True)
class Measure:
    """How `build` measures the compiled module: timed runs on `device`, optionally beside the
    same graph at another level (`compare`) and baselines (`against`: eager, inductor)."""

    device: str = "cpu"
    warmup: int = 3
    repeats: int = 20
    compare: int | None = None
    against: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.warmup < 0:
            raise ArchgraphError(
                "repeats must be >= 1 and warmup >= 0",
                found=f"repeats {self.repeats}, warmup {self.warmup}",
            )
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ArchgraphError(
                "--device cuda needs a CUDA GPU, and none is visible", hint="use --device cpu"
            )


@dataclass
class Compilation:
    """One compilation and everything made from it (see `build`). `graph` is what was compiled
    (after rewrites and pruning), `profile` its costs (and timings, if measured)."""

    graph: Graph
    opt_level: int
    profile: Profile
    transforms: list[Any] = field(default_factory=list)  # the rewrite and prune reports
    pass_reports: list[PassReport] = field(default_factory=list)  # of this compilation

    @property
    def module(self) -> fx.GraphModule:
        assert self.profile.module is not None
        return self.profile.module

    @property
    def ir(self) -> Graph:
        """The optimized graph the module was lowered from."""
        return self.module.meta[IR_KEY]

    def code(self) -> str:
        """The generated module's Python code."""
        return self.module.code.lstrip("\n")

    def kernels(self, dtype: str | None = None) -> dict[str, str]:
        """Every CUDA kernel source of the compiled graph, by file name, with their index."""
        from archgraph.codegen.kernels.cuda.emit import render_files

        return render_files(self.ir, dtype)

    def spec(self) -> str:
        """The compiled (rewritten, pruned) architecture as a YAML spec."""
        from archgraph.spec.emit import graph_to_yaml

        return graph_to_yaml(self.graph)

    def onnx(self) -> bytes:
        """The module as an ONNX model (batch dimension dynamic); on the CPU."""
        from archgraph.profile.export import onnx_model

        return onnx_model(self.module, self.graph, self.opt_level)

    def render(self, kind: str) -> str | bytes | dict[str, str]:
        """One of OUTPUT_KINDS: a file's text or bytes, or a folder's files by name."""
        from archgraph.profile.outputs import PROFILE_FILES, render_file

        if kind in PROFILE_FILES:
            return render_file(self.profile, kind)
        makers = {"code": self.code, "kernels": self.kernels, "spec": self.spec, "onnx": self.onnx}
        return makers[kind]()


# what Compilation.render makes; "kernels" is a folder (see archgraph.outputs)
OUTPUT_KINDS = ("json", "report", "trace", "dot", "code", "kernels", "spec", "onnx")
FOLDER_KINDS = ("kernels",)


def build(
    source: str | Path | Graph,
    opt_level: int = 0,
    *,
    batch: int = 1,
    params: Mapping[str, Any] | None = None,
    limits: Limits = Limits(),
    weights: Mapping[str, torch.Tensor] | None = None,
    rewrites: Sequence[str] = (),
    prunes: Sequence[PruneOption] = (),
    passes: str | Sequence[str] | None = None,
    passes_origin: str = "passes",
    measure: Measure | None = None,
    depth: int | None = None,
    say: Callable[[str], None] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Compilation:
    """Load (a spec path or zoo name; or take a Graph), rewrite and prune, compile once at
    `opt_level`, and cost the result; with `measure`, also time it. Everything a command makes
    (code, kernels, spec, ONNX, profile files) comes from the one Compilation returned.

    rewrites: names for archgraph.rewrite, in order; prunes: then these, in order. Each
    transform's report goes to `say` and into `Compilation.transforms`. passes: replaces the
    level's pipeline (`passes_origin` names where the list came from in errors). depth: group
    profile rows by the first `depth` components of node ids.
    """
    from archgraph.passes import pass_context
    from archgraph.profile import profile

    if depth is not None and depth < 1:
        raise ArchgraphError("the grouping depth (--depth) must be >= 1", found=str(depth))
    start = time.perf_counter()
    if isinstance(source, Graph):
        graph, load_s = source, None
    else:
        graph = load(source, batch=batch, limits=limits, **dict(params or {}))
        load_s = time.perf_counter() - start
    graph, transforms = _transform(graph, rewrites, prunes, say or (lambda line: None))
    runs: list[list[PassReport]] = []
    m = measure or Measure()
    with pass_context(passes, reports=runs, origin=passes_origin):
        result = profile(
            graph,
            opt_level=opt_level,
            weights=weights,
            device=m.device,
            warmup=m.warmup,
            repeats=m.repeats,
            measure=measure is not None,
            compare=m.compare,
            against=m.against,
            depth=depth,
            load_s=load_s,
            progress=progress,
        )
    return Compilation(graph, opt_level, result, transforms, runs[0] if runs else [])


def _transform(
    graph: Graph,
    rewrites: Sequence[str],
    prunes: Sequence[PruneOption],
    say: Callable[[str], None],
) -> tuple[Graph, list[Any]]:
    from archgraph.passes.prune.sparsity import prune_weights
    from archgraph.passes.prune.structured import prune_channels
    from archgraph.passes.rewrites import rewrite

    reports: list[Any] = []
    for name in rewrites:
        graph, report = rewrite(graph, name)
        reports.append(report)
        say(str(report))
    for option in prunes:
        if option.kind == "channels":
            graph, report = prune_channels(graph, option.ratio, **option.options)
        else:
            graph, _, report = prune_weights(graph, option.ratio, **option.options)
        reports.append(report)
        say(str(report))
    return graph, reports
