"""A sweep file's points: the grid, a seeded draw from the grid, or the listed points.

Each point's settings are the file's fixed settings with its axis values put over them; its key
(a hash of those settings) names it in the results table, so `--resume` knows it, whatever order
points finish in.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass, replace
from typing import Any

from archgraph.errors import Loc, SpecError
from archgraph.sweep.fileformat import Settings, SweepFile, grid_size


@dataclass(frozen=True)
class Point:
    index: int  # position in the sweep's order
    key: str  # hash of the settings
    settings: Settings


def apply(fixed: Settings, values: dict[str, Any]) -> Settings:
    """`fixed` with the setting values (named like axes: 'params.NAME', 'prune', ...) over it."""
    params = dict(fixed.params)
    out = fixed
    for name, value in values.items():
        if name.startswith("params."):
            params[name.removeprefix("params.")] = value
        else:
            out = replace(out, **{name: value})
    return replace(out, params=params)


def settings_json(s: Settings) -> str:
    return json.dumps(
        {"params": s.params, "rewrite": s.rewrite, "prune": s.prune, "opt_level": s.opt_level},
        sort_keys=True,
        separators=(",", ":"),
    )


def point_key(s: Settings) -> str:
    return hashlib.sha256(settings_json(s).encode()).hexdigest()[:16]


def _combination(axes: dict[str, list[Any]], flat: int) -> dict[str, Any]:
    """The `flat`-th combination of the grid in itertools.product order."""
    out: dict[str, Any] = {}
    for name, values in reversed(axes.items()):
        flat, i = divmod(flat, len(values))
        out[name] = values[i]
    return dict(reversed(out.items()))


def assignments(sweep: SweepFile) -> list[dict[str, Any]]:
    """Each point's axis values, in the sweep's order."""
    if sweep.search == "list":
        return sweep.points
    if sweep.search == "grid":
        names = list(sweep.axes)
        return [dict(zip(names, c, strict=True)) for c in itertools.product(*sweep.axes.values())]
    draw = random.Random(sweep.seed).sample(range(grid_size(sweep)), sweep.samples or 0)
    return [_combination(sweep.axes, flat) for flat in draw]


def setting_columns(sweep: SweepFile) -> list[str]:
    """The settings that vary between points: one table column each."""
    if sweep.search != "list":
        return list(sweep.axes)
    names: list[str] = []
    for point in sweep.points:
        names.extend(n for n in point if n not in names)
    return names


def expand(sweep: SweepFile) -> list[Point]:
    """Every point of the sweep; two points with the same settings are an error."""
    points: list[Point] = []
    seen: dict[str, int] = {}
    for i, values in enumerate(assignments(sweep)):
        settings = apply(sweep.fixed, values)
        key = point_key(settings)
        if key in seen:
            raise SpecError(
                f"points {seen[key]} and {i} have the same settings",
                loc=Loc(str(sweep.path)),
                found=settings_json(settings),
                hint="an axis lists a value twice, or two listed points are equal",
            )
        seen[key] = i
        points.append(Point(i, key, settings))
    return points


def setting_cell(settings: Settings, name: str) -> str:
    """A setting's value as the table writes it: JSON for parameters, 'a + b' for rewrites and
    prunes ('' for none), the number for the -O level."""
    if name.startswith("params."):
        param = name.removeprefix("params.")
        if param not in settings.params:
            return ""  # the base spec's default
        return json.dumps(settings.params[param], separators=(",", ":"))
    value = getattr(settings, name)
    return " + ".join(value) if isinstance(value, tuple) else str(value)
