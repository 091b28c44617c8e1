"""Architecture rewrites, asked for by name (never run implicitly), each reporting params, MACs
and memory access cost before and after. A rewrite that takes a value is named NAME=VALUE.

    graph, report = rewrite(graph, "dense-to-osa")
    graph, report = rewrite(graph, "sparse-wide=0.75")   # report.densities: train at these
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from archgraph.errors import ArchgraphError, did_you_mean
from archgraph.ir.graph import Graph
from archgraph.passes.rewrites.dense_to_osa import dense_to_osa
from archgraph.passes.rewrites.report import ArchReport, Size, measure


@dataclass(frozen=True)
class Rewrite:
    """`run(graph, seed, value)` -> (graph, note, weight densities to train at); `value` names
    the rewrite's parameter (None: it takes none)."""

    run: Callable[[Graph, int, float | None], tuple[Graph, str, dict[str, float]]]
    value: str | None = None


def _dense_to_osa(g: Graph, seed: int, _: float | None) -> tuple[Graph, str, dict[str, float]]:
    out, n = dense_to_osa(g, seed=seed)
    return out, f"rewrote {n} dense block(s) into one-shot aggregation blocks", {}


def _sparse_wide(g: Graph, seed: int, s: float | None) -> tuple[Graph, str, dict[str, float]]:
    # imported here: sparse_wide builds on the prune package, which imports this one
    from archgraph.passes.rewrites.sparse_wide import sparse_wide, widen_factor

    assert s is not None
    out, densities = sparse_wide(g, s, seed=seed)
    note = (
        f"widened {len(densities)} conv/linear layers by {widen_factor(s):.3f} "
        f"(1/sqrt(1 - {s:g})); train them at the densities in report.densities "
        f"(sparsity {s:g} where both fan-in and fan-out widened) for the dense MACs"
    )
    return out, note, densities


REWRITES: dict[str, Rewrite] = {
    "dense-to-osa": Rewrite(_dense_to_osa),
    "sparse-wide": Rewrite(_sparse_wide, value="S, the sparsity in (0, 1)"),
}


def _parse(text: str) -> tuple[str, float | None]:
    name, eq, raw = text.partition("=")
    name = name.strip()
    if name not in REWRITES:
        raise ArchgraphError(
            f"unknown rewrite '{name}'",
            expected=" | ".join(n + ("=S" if r.value else "") for n, r in REWRITES.items()),
            found=repr(text),
            hint=did_you_mean(name, REWRITES),
        )
    wants = REWRITES[name].value
    if wants is None:
        if eq:
            raise ArchgraphError(
                f"rewrite '{name}' takes no value", expected=name, found=repr(text)
            )
        return name, None
    try:
        return name, float(raw)
    except ValueError:
        raise ArchgraphError(
            f"rewrite '{name}' needs a value", expected=f"{name}=<{wants}>", found=repr(text)
        ) from None


def rewrite(graph: Graph, name: str, *, seed: int = 0) -> tuple[Graph, ArchReport]:
    """Apply the named rewrite ('NAME' or 'NAME=VALUE'); returns the new graph and its
    before/after report."""
    key, value = _parse(name)
    before = measure(graph)
    out, note, densities = REWRITES[key].run(graph, seed, value)
    return out, ArchReport(f"rewrite {name}", before, measure(out), (note,), densities)


__all__ = ["REWRITES", "ArchReport", "Rewrite", "Size", "measure", "rewrite"]
