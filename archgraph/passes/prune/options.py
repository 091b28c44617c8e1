"""Pruning options: the kinds and their choices, their checks, and the option object that a
`KIND=VALUE[,key=value...]` string (`--prune`, a sweep file's prune axis) becomes."""

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


def parse_prune(text: str) -> PruneOption:
    """`channels=0.5,importance=l1,scope=layer` or `weights=0.9,method=magnitude`: the option
    string of `--prune`, of a sweep file's prune axis and of `archgraph train --prune`."""

    where = f"--prune {text}"
    pairs = []
    for p in (p.strip() for p in text.split(",") if p.strip()):
        if "=" not in p:
            raise ArchgraphError(
                f"{where}: expected KEY=VALUE, found '{p}'",
                expected="channels=RATIO or weights=SPARSITY, then key=value options",
            )
        key, _, value = p.partition("=")
        pairs.append((key.strip(), value.strip()))
    if not pairs or pairs[0][0] not in KINDS:
        first = pairs[0][0] if pairs else ""
        raise ArchgraphError(
            f"{where}: the first item names what to prune",
            expected="channels=RATIO or weights=SPARSITY",
            found=repr(first),
            hint=did_you_mean(first, KINDS),
        )
    kind, raw = pairs[0]
    try:
        ratio = float(raw)
    except ValueError:
        raise ArchgraphError(
            f"{where}: {kind} needs a number", expected="a number in [0, 1)", found=repr(raw)
        ) from None
    try:
        check_ratio(kind, ratio)
    except ArchgraphError as e:
        e.message = f"{where}: {e.message}"
        raise
    allowed = KINDS[kind]
    options: dict[str, str] = {}
    for key, value in pairs[1:]:
        check_choice("option", key, tuple(allowed), f"{where}: {kind}")
        options[key] = check_choice(key, value, allowed[key], where)
    return PruneOption(kind, ratio, options)
