"""The compile command's `--rewrite`, `--prune` and `--emit-spec` options: parsed here, run
through the Python API, each transform's report printed. Applied in the order rewrites, then
prunes (in the order given), then the spec is written."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from archgraph.errors import ArchgraphError

if TYPE_CHECKING:
    from archgraph.ir.graph import Graph


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rewrite",
        metavar="NAME",
        action="append",
        default=[],
        help="rewrite the architecture before compiling: dense-to-osa (repeatable)",
    )
    p.add_argument(
        "--prune",
        metavar="KIND=R[,k=v]",
        action="append",
        default=[],
        help="channels=RATIO[,importance=l1|l2|random][,scope=layer|global] or "
        "weights=SPARSITY[,method=magnitude|random-erk][,scope=layer|global]",
    )
    p.add_argument(
        "--emit-spec",
        metavar="PATH",
        help="write the (rewritten, pruned) architecture as a YAML spec",
    )


def transform(args: argparse.Namespace, graph: Graph, say: Callable[[str], None]) -> Graph:
    """Apply the requested rewrites and prunes to `graph`; write --emit-spec."""
    from archgraph.passes.prune.options import parse_prune

    rewrites = list(getattr(args, "rewrite", []) or [])
    prunes = [parse_prune(text) for text in getattr(args, "prune", []) or []]
    for name in rewrites:
        from archgraph.passes.rewrites import rewrite

        graph, report = rewrite(graph, name)
        say(str(report))
    for option in prunes:
        if option.kind == "channels":
            from archgraph.passes.prune.structured import prune_channels

            graph, report = prune_channels(graph, option.ratio, **option.options)
        else:
            from archgraph.passes.prune.sparsity import prune_weights

            graph, _, report = prune_weights(graph, option.ratio, **option.options)
        say(str(report))
    path = getattr(args, "emit_spec", None)
    if path:
        from archgraph.profile.report import write_atomic
        from archgraph.spec.emit import graph_to_yaml

        try:
            write_atomic(path, graph_to_yaml(graph))
        except OSError as e:
            raise ArchgraphError(f"cannot write the spec to '{path}'", found=str(e)) from None
        say(f"wrote the architecture as a spec to {path} ({len(graph)} nodes)")
    return graph
