"""What an architecture-changing transform reports: parameters, MACs and VoVNet's memory access
cost (MAC = h*w*(c_in + c_out) + k^2*c_in*c_out per conv, in elements) before and after."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from archgraph.ir.graph import Graph
from archgraph.profile.costs import node_costs, totals


@dataclass(frozen=True)
class Size:
    params: int
    macs: int  # multiply-accumulates (the ops' cost rules)
    conv_mac: int  # memory access cost of the conv layers, in elements


def measure(graph: Graph) -> Size:
    t = totals(node_costs(graph))
    return Size(t.params, t.macs or 0, t.conv_mac or 0)


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3f}{unit}"
    return f"{n:.0f}"


@dataclass(frozen=True)
class ArchReport:
    """A transform's name, the graph's size before and after, and what it did."""

    name: str
    before: Size
    after: Size
    notes: tuple[str, ...] = ()
    # weight key -> the density to train it at, for a rewrite meant to be trained sparse
    # (sparse-wide); empty for the others
    densities: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def ratio(self, field: str) -> float:
        b = getattr(self.before, field)
        return getattr(self.after, field) / b if b else float("nan")

    def lines(self) -> list[str]:
        rows = [self.name]
        for label, field in (
            ("params", "params"),
            ("MACs (multiply-accumulates)", "macs"),
            ("MAC (memory access cost)", "conv_mac"),
        ):
            b, a = getattr(self.before, field), getattr(self.after, field)
            rows.append(
                f"  {label:<28} {_human(b):>10} -> {_human(a):<10} ({self.ratio(field):.3f}x)"
            )
        rows.extend(f"  {n}" for n in self.notes)
        return rows

    def __str__(self) -> str:
        return "\n".join(self.lines())
