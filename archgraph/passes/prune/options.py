"""Pruning options: the kinds and their choices, their checks, and the option object a
`--prune KIND=VALUE[,key=value...]` becomes (the command line parses it, in archgraph/cli.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from archgraph.errors import ArchgraphError, did_you_mean

KINDS = {
    "channels": {"importance": ("l1", "l2", "random"), "scope": ("layer", "global")},
    "weights": {"method": ("magnitude", "random-erk"), "scope": ("layer", "global")},
}


def check_ratio(what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ArchgraphError(
            f"the {what} pruning ratio is out of range",
            expected="a number in [0, 1)",
            found=repr(value),
        )
    return float(value)


def check_choice(what: str, value: str, choices: tuple[str, ...], where: str = "") -> str:
    if value not in choices:
        raise ArchgraphError(
            f"{where}: unknown {what} '{value}'" if where else f"unknown {what} '{value}'",
            expected=" | ".join(choices),
            found=repr(value),
            hint=did_you_mean(str(value), choices),
        )
    return value


@dataclass(frozen=True)
class PruneOption:
    """One parsed --prune: `kind` channels or weights, its ratio and its keyword options."""

    kind: str
    ratio: float
    options: dict[str, str] = field(default_factory=dict)
