"""The passes by name, the pipeline of each -O level, and the pass context.

-O0 runs nothing. -O1: canonicalization, identity/dropout removal, dead-node and
common-subexpression elimination, batchnorm folding, conv/linear epilogue fusion, pointwise
chain fusion. -O2 adds attention lowered to SDPA, horizontal fusion of QKV projections and of
parallel convs over one input, dense-block concat elimination, the device layout, and convs
that add into a residual buffer nothing reads afterwards. Every
pass at -O1 and -O2 keeps what the network computes in eval mode (differential tests check it
against -O0); -O1/-O2 modules are for inference (batchnorm folded with its running statistics,
dropout gone).

Train mode (compile(..., mode="train")) has pipelines of its own, `TRAIN_LEVELS`, made only of
the passes in `TRAIN_SAFE`: those that keep the forward and the backward, in training, equal
to -O0's, and every parameter and buffer under its -O0 name and value (so gradients, optimizer
state, masks and checkpoints carry over between levels). Which passes, and why:

- train-safe: canonicalize, remove_identity_train (identity only; dropout acts in training),
  dce, fuse_bn_act (every batchnorm becomes a training batchnorm, fused with its activation:
  run before the other fusions, it leaves them no eval-mode batchnorm to fold), fuse_conv
  (then only the residual-add/activation epilogue can apply), fuse_pointwise (then without
  affine steps; its CPU path has a backward that recomputes the chain), sdpa (dropout kept,
  active only in training), dense_concat (the buffer ops are autograd Functions), layout
  (channels_last activations; prepacked weights apply only in inference, training convs run
  F.conv2d on the NHWC tensors);
- not train-safe: remove_identity (drops dropout), cse (would merge two dropouts, which draw
  different masks), fold_bn (uses running statistics, and rewrites weights), fuse_qkv and
  fuse_parallel_convs (concatenate parameters into new ones), inplace_residual (autograd may
  keep the residual it would overwrite).

A PassContext (TVM's idea) lets a caller that does not call compile itself, such as the CLI
going through the profiler, choose an explicit pass list for every compile inside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from archgraph.errors import Loc, SpecError, did_you_mean
from archgraph.ir.graph import Graph
from archgraph.passes.canonicalize import CANONICALIZE
from archgraph.passes.cse import CSE
from archgraph.passes.dce import DCE
from archgraph.passes.dense_concat import DENSE_CONCAT
from archgraph.passes.fold_bn import FOLD_BN
from archgraph.passes.fuse_bn_act import FUSE_BN_ACT
from archgraph.passes.fuse_conv import FUSE_CONV
from archgraph.passes.fuse_pointwise import FUSE_POINTWISE
from archgraph.passes.horizontal import FUSE_PARALLEL_CONVS, FUSE_QKV
from archgraph.passes.identity import REMOVE_IDENTITY, REMOVE_IDENTITY_TRAIN
from archgraph.passes.inplace_residual import INPLACE_RESIDUAL
from archgraph.passes.layout import LAYOUT
from archgraph.passes.manager import Pass, PassManager, PassReport
from archgraph.passes.sdpa import SDPA

PASSES: dict[str, Pass] = {
    p.name: p
    for p in [
        CANONICALIZE,
        REMOVE_IDENTITY,
        REMOVE_IDENTITY_TRAIN,
        DCE,
        CSE,
        SDPA,
        FOLD_BN,
        FUSE_BN_ACT,
        FUSE_CONV,
        FUSE_QKV,
        FUSE_PARALLEL_CONVS,
        FUSE_POINTWISE,
        DENSE_CONCAT,
        LAYOUT,
        INPLACE_RESIDUAL,
    ]
}

_CLEANUP = ["canonicalize", "remove_identity", "dce", "cse"]
LEVELS: dict[int, list[str]] = {
    0: [],
    1: [*_CLEANUP, "fold_bn", "fuse_conv", "fuse_pointwise"],
    2: [
        *_CLEANUP,
        "sdpa",
        "fold_bn",
        "fuse_conv",
        "fuse_qkv",
        "fuse_parallel_convs",
        "fuse_pointwise",
        "dense_concat",
        "layout",
        "inplace_residual",
    ],
}

MODES = ("eval", "train")
TRAIN_SAFE = (
    "canonicalize",
    "remove_identity_train",
    "dce",
    "fuse_bn_act",
    "fuse_conv",
    "fuse_pointwise",
    "sdpa",
    "dense_concat",
    "layout",
)
_READ_BATCHNORM = ("fuse_conv", "fuse_pointwise")
_TRAIN_CLEANUP = ["canonicalize", "remove_identity_train", "dce"]
TRAIN_LEVELS: dict[int, list[str]] = {
    0: [],
    1: [*_TRAIN_CLEANUP, "fuse_bn_act", "fuse_conv", "fuse_pointwise"],
    2: [
        *_TRAIN_CLEANUP,
        "sdpa",
        "fuse_bn_act",
        "fuse_conv",
        "fuse_pointwise",
        "dense_concat",
        "layout",
    ],
}

_EXPLICIT: ContextVar[tuple[str, ...] | None] = ContextVar("archgraph_passes", default=None)
_SINK: ContextVar[list[list[PassReport]] | None] = ContextVar("archgraph_reports", default=None)


def register_pass(p: Pass, *, replace: bool = False) -> Pass:
    """Make a pass available by name (to --passes and compile(passes=...))."""
    if p.name in PASSES and not replace:
        raise ValueError(f"pass '{p.name}' is already registered")
    PASSES[p.name] = p
    return p


def parse_passes(names: str | Sequence[str], origin: str = "passes") -> list[str]:
    """'a,b,c' or ['a', 'b', 'c'] -> checked names. An unknown name is a SpecError located at
    `origin` (the option or argument the list came from), column = where the name starts."""
    items: list[tuple[str, Loc]] = []
    if isinstance(names, str):
        col = 1
        for part in names.split(","):
            items.append((part.strip(), Loc(origin, 1, col + len(part) - len(part.lstrip()))))
            col += len(part) + 1
    else:
        items = [(str(n).strip(), Loc(f"{origin}[{i}]")) for i, n in enumerate(names)]
    out = []
    for name, loc in items:
        if not name:
            continue
        if name not in PASSES:
            raise SpecError(
                f"unknown pass '{name}'",
                loc=loc,
                expected=", ".join(PASSES),
                found=name,
                hint=did_you_mean(name, PASSES),
                field="passes",
            )
        out.append(name)
    return out


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise SpecError(
            f"unknown compile mode '{mode}'",
            expected=" or ".join(MODES),
            found=repr(mode),
            hint=did_you_mean(str(mode), MODES),
            field="mode",
        )


def pipeline(
    opt_level: int, passes: str | Sequence[str] | None = None, mode: str = "eval"
) -> PassManager:
    """The PassManager for an -O level in `mode` ("eval" or "train"), or for an explicit list
    (which replaces the level's; in train mode its passes must be train-safe, and fuse_bn_act
    runs first when the list has a fusion that would read a batchnorm)."""
    check_mode(mode)
    if passes is None:
        passes = _EXPLICIT.get()
    if passes is not None:
        names = parse_passes(passes)
        unsafe = [n for n in names if mode == "train" and n not in TRAIN_SAFE]
        if unsafe:
            raise SpecError(
                f"pass '{unsafe[0]}' is not train-safe",
                expected=", ".join(TRAIN_SAFE),
                found=unsafe[0],
                hint="train mode keeps -O0's training behaviour and parameters; "
                "see archgraph.passes.pipelines",
                field="passes",
            )
        if mode == "train" and any(n in _READ_BATCHNORM for n in names):
            # those fusions would treat a batchnorm as its eval-mode affine
            names = ["fuse_bn_act", *(n for n in names if n != "fuse_bn_act")]
        return PassManager([PASSES[n] for n in names])
    levels = TRAIN_LEVELS if mode == "train" else LEVELS
    if opt_level not in levels:
        raise SpecError(
            f"optimization level -O{opt_level} is not available",
            expected=" or ".join(f"-O{o}" for o in LEVELS),
            found=f"-O{opt_level}",
        )
    return PassManager([PASSES[n] for n in levels[opt_level]])


def run_pipeline(
    graph: Graph,
    opt_level: int = 0,
    passes: str | Sequence[str] | None = None,
    mode: str = "eval",
) -> tuple[Graph, list[PassReport]]:
    """Optimize a graph (weights bound) at `opt_level` for `mode`, or with an explicit list."""
    graph, reports = pipeline(opt_level, passes, mode).run(graph)
    sink = _SINK.get()
    if sink is not None:
        sink.append(reports)
    return graph, reports


@contextmanager
def pass_context(
    passes: str | Sequence[str] | None = None,
    reports: list[list[PassReport]] | None = None,
    origin: str = "passes",
) -> Iterator[None]:
    """Inside, every pipeline run (that names no passes itself) runs `passes` if given, and
    appends its reports to `reports` if given (one list per run, in order). `origin` names
    where the list came from in errors (the CLI passes '--passes')."""
    explicit = _EXPLICIT.set(tuple(parse_passes(passes, origin)) if passes is not None else None)
    sink = _SINK.set(reports)
    try:
        yield
    finally:
        _SINK.reset(sink)
        _EXPLICIT.reset(explicit)


def explain(reports: Sequence[PassReport]) -> str:
    """The per-pass report as text: one line per pass, then its notes."""
    lines = []
    for r in reports:
        lines.append(r.line())
        lines.extend(f"    {note}" for note in r.notes)
    total = sum(r.seconds for r in reports)
    if reports:
        lines.append(
            f"{len(reports)} passes: nodes {reports[0].nodes_before} -> {reports[-1].nodes_after}, "
            f"{sum(r.groups_fused for r in reports)} groups fused, "
            f"{sum(r.bytes_saved for r in reports) / 1e6:.2f} MB of activations saved per call, "
            f"{total * 1e3:.1f} ms"
        )
    return "\n".join(lines)
