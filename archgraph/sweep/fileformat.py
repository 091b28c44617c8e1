"""The sweep file: YAML loaded like a spec (safe, located) and checked key by key.

    name: vovnet_osa                 # names the default output folder
    base: vovnet39a                  # a zoo name, or a spec path relative to this file
    batch: 1                         # the batch size every metric is taken at
    threads: 1                       # torch threads (and pinned cores) per point
    params: {image_size: 32}         # fixed spec parameters (what `--set` overrides)
    rewrite: dense-to-osa            # fixed rewrites (a name or a list), applied first
    prune: channels=0.5              # fixed prunes (`--prune` syntax, a string or a list)
    opt_level: 1                     # fixed -O level
    search: grid                     # grid (every combination) | random | list
    axes:                            # grid and random: the values each setting takes
      params: {layers_per_block: [3, 5]}
      prune: [null, channels=0.25, channels=0.5]
      rewrite: [null, dense-to-osa]
      opt_level: [0, 1, 2]
    samples: 8                       # random: points drawn from the grid without repeats
    seed: 0                          # random: the draw's seed
    points:                          # list: each point's settings (unset ones keep the fixed)
      - {params: {layers_per_block: 3}, prune: channels=0.5}
    metrics: [params, macs, flops, memory_access, conv_mac, peak_memory, latency, synflow]
    latency: {warmup: 3, repeats: 10}
    objectives: {macs: min, synflow: max}   # the Pareto front's columns and directions

Every problem is a SpecError located in the sweep file; settings the base spec does not have
(an unknown parameter, rewrite or prune option) are caught here, before any point runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archgraph.errors import ArchgraphError, Loc, SpecError, did_you_mean
from archgraph.spec.yaml_source import LDict, LList, parse_yaml
from archgraph.sweep.metrics import METRICS, NUMERIC_COLUMNS

SEARCHES = ("grid", "random", "list")
SETTING_KEYS = ("params", "rewrite", "prune", "opt_level")
NEEDS = {"grid": ("axes",), "random": ("axes", "samples"), "list": ("points",)}
ONLY = {
    "axes": ("grid", "random"),
    "samples": ("random",),
    "seed": ("random",),
    "points": ("list",),
}
TOP_KEYS = (
    "name",
    "description",
    "base",
    "batch",
    "threads",
    *SETTING_KEYS,
    "search",
    "axes",
    "samples",
    "seed",
    "points",
    "metrics",
    "latency",
    "objectives",
)
LATENCY_KEYS = ("warmup", "repeats")
MAX_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class Settings:
    """What makes one point: spec parameters, rewrites, prunes (in `--prune` syntax), -O level."""

    params: dict[str, Any] = field(default_factory=dict)
    rewrite: tuple[str, ...] = ()
    prune: tuple[str, ...] = ()
    opt_level: int = 0


@dataclass(frozen=True)
class SweepFile:
    name: str
    description: str
    path: Path
    base: str  # a zoo name or an absolute spec path
    batch: int
    threads: int
    fixed: Settings
    search: str
    axes: dict[str, list[Any]]  # setting name ('params.NAME', 'rewrite', ...) -> values
    samples: int | None
    seed: int
    points: list[dict[str, Any]]  # list search: setting name -> value
    metrics: tuple[str, ...]
    warmup: int
    repeats: int
    objectives: dict[str, str]  # column -> 'min' | 'max'


def grid_size(sweep: SweepFile) -> int:
    """The number of combinations of the axes."""
    return math.prod(len(v) for v in sweep.axes.values())


def plain(value: Any) -> Any:
    """LDict/LList -> dict/list, so settings pickle, hash and print as ordinary data."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _short(value: Any) -> str:
    text = repr(plain(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _expect(value: Any, kind: type | tuple[type, ...], what: str, loc: Loc, expected: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise SpecError(
            f"{what} has the wrong type",
            loc=loc,
            expected=expected,
            found=f"{_short(value)} ({type(value).__name__})",
        )
    return value


def _keys(mapping: LDict, allowed: tuple[str, ...], what: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise SpecError(
                f"unknown key '{key}' in {what}",
                loc=mapping.key_locs.get(key, mapping.loc),
                expected=", ".join(allowed),
                found=key,
                hint=did_you_mean(key, allowed),
            )


def _positive(raw: LDict, key: str, default: int, minimum: int = 1) -> int:
    value = _expect(raw.get(key, default), int, f"`{key}`", raw.loc_of(key), "an integer")
    if value < minimum:
        raise SpecError(
            f"`{key}` is out of range",
            loc=raw.loc_of(key),
            expected=f"an integer >= {minimum}",
            found=str(value),
        )
    return value


class _Checker:
    """Checks settings against what exists: the base spec's params, rewrites, prune syntax."""

    def __init__(self, base_params: LDict) -> None:
        self.base_params = base_params

    def names(self, value: Any, loc: Loc, what: str) -> tuple[str, ...]:
        """null, one string, or a list of strings."""
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            where = items.loc_of(i) if isinstance(items, LList) else loc
            _expect(item, str, what, where, "a string, a list of strings, or null")
        return tuple(items)

    def rewrite(self, value: Any, loc: Loc) -> tuple[str, ...]:
        from archgraph.passes.rewrites import REWRITES

        names = self.names(value, loc, "a rewrite")
        for i, name in enumerate(names):
            if name not in REWRITES:
                raise SpecError(
                    f"unknown rewrite '{name}'",
                    loc=value.loc_of(i) if isinstance(value, LList) else loc,
                    expected=" | ".join(REWRITES),
                    found=repr(name),
                    hint=did_you_mean(name, REWRITES),
                )
        return names

    def prune(self, value: Any, loc: Loc) -> tuple[str, ...]:
        from archgraph.passes.prune.options import parse_prune

        texts = self.names(value, loc, "a prune option")
        for i, text in enumerate(texts):
            try:
                parse_prune(text)
            except ArchgraphError as e:
                raise SpecError(
                    e.message,
                    loc=value.loc_of(i) if isinstance(value, LList) else loc,
                    expected=e.expected,
                    found=e.found,
                    hint=e.hint,
                ) from None
        return texts

    def opt_level(self, value: Any, loc: Loc) -> int:
        from archgraph.passes import LEVELS

        if isinstance(value, bool) or value not in LEVELS:
            raise SpecError(
                "unknown optimization level",
                loc=loc,
                expected=" | ".join(str(level) for level in LEVELS),
                found=_short(value),
            )
        return value

    def param(self, name: str, loc: Loc) -> str:
        if name not in self.base_params:
            raise SpecError(
                f"the base spec has no parameter '{name}'",
                loc=loc,
                expected=", ".join(self.base_params) or "no parameters",
                found=name,
                hint=did_you_mean(name, self.base_params),
            )
        return name

    def setting(self, name: str, value: Any, loc: Loc) -> Any:
        """One value of a setting named like an axis ('params.NAME', 'rewrite', ...)."""
        if name.startswith("params."):
            return plain(value)
        return getattr(self, name)(value, loc)

    def fixed(self, raw: LDict) -> Settings:
        params = _expect(
            raw.get("params", LDict(loc=raw.loc)),
            LDict,
            "`params`",
            raw.loc_of("params"),
            "a mapping of spec parameter -> value",
        )
        for key in params:
            self.param(key, params.key_locs[key])
        return Settings(
            plain(dict(params)),
            self.rewrite(raw.get("rewrite"), raw.loc_of("rewrite")),
            self.prune(raw.get("prune"), raw.loc_of("prune")),
            self.opt_level(raw.get("opt_level", 0), raw.loc_of("opt_level")),
        )

    def assignments(self, raw: LDict, what: str, values: bool) -> dict[str, tuple[Any, Loc]]:
        """The axes mapping (`values`: each entry a list of values) or one point's mapping,
        flattened to setting name -> (raw value, its location)."""
        _keys(raw, SETTING_KEYS, what)
        out: dict[str, tuple[Any, Loc]] = {}
        for key, value in raw.items():
            if key == "params":
                params = _expect(value, LDict, f"`params` in {what}", raw.loc_of(key), "a mapping")
                for name, v in params.items():
                    self.param(name, params.key_locs[name])
                    out[f"params.{name}"] = (v, params.loc_of(name))
            else:
                out[key] = (value, raw.loc_of(key))
        if values:
            for name, (value, loc) in out.items():
                _expect(value, LList, f"the axis `{name}`", loc, "a list of values")
                if not value:
                    raise SpecError(
                        f"the axis `{name}` has no values", loc=loc, expected="a non-empty list"
                    )
        return out


def _base_params(base: str, sweep_dir: Path, loc: Loc) -> tuple[str, LDict]:
    """The base spec's source (zoo name or absolute path) and its `params:` mapping."""
    from archgraph.spec import resolve_source

    candidate = sweep_dir / base
    source = str(candidate.resolve()) if candidate.is_file() else base
    try:
        path = resolve_source(source)
    except SpecError as e:
        e.loc = loc
        raise
    spec = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    params = spec.get("params", LDict(loc=spec.loc)) if isinstance(spec, LDict) else LDict()
    return source, params if isinstance(params, LDict) else LDict()


def _metrics(raw: LDict) -> tuple[str, ...]:
    loc = raw.loc_of("metrics")
    items = _expect(raw.get("metrics", LList(loc=loc)), LList, "`metrics`", loc, "a list of names")
    if not items:
        raise SpecError("`metrics` is empty", loc=loc, expected=", ".join(METRICS))
    for i, name in enumerate(items):
        if name not in METRICS:
            raise SpecError(
                f"unknown metric {_short(name)}",
                loc=items.loc_of(i),
                expected=", ".join(METRICS),
                found=_short(name),
                hint=did_you_mean(str(name), METRICS),
            )
    return tuple(items)


def _objectives(raw: LDict, metrics: tuple[str, ...]) -> dict[str, str]:
    loc = raw.loc_of("objectives")
    objectives = _expect(
        raw.get("objectives"), LDict, "`objectives`", loc, "a mapping of column -> min | max"
    )
    columns = [c for m in metrics for c in METRICS[m].columns if c in NUMERIC_COLUMNS]
    if len(objectives) < 2:
        raise SpecError(
            "a Pareto front needs at least two objectives",
            loc=loc,
            expected="two or more of: " + ", ".join(columns),
            found=str(len(objectives)),
        )
    for column, direction in objectives.items():
        if column not in columns:
            raise SpecError(
                f"objective '{column}' is not a column the metrics record",
                loc=objectives.key_locs[column],
                expected=", ".join(columns),
                found=column,
                hint=did_you_mean(column, columns) or "add its metric to `metrics`",
            )
        if direction not in ("min", "max"):
            raise SpecError(
                f"objective '{column}' needs a direction",
                loc=objectives.loc_of(column),
                expected="min | max",
                found=_short(direction),
            )
    return dict(objectives)


def parse_sweep(text: str, file: str) -> SweepFile:
    """Check a sweep file's text; `file` names it in errors and anchors relative base paths."""
    raw = parse_yaml(text, file)
    raw = _expect(raw, LDict, "the sweep file", Loc(file, 1, 1), "a mapping with `base:`")
    _keys(raw, TOP_KEYS, "the sweep file")
    for key in ("name", "base", "metrics", "objectives"):
        if key not in raw:
            raise SpecError(f"the sweep file has no `{key}:`", loc=raw.loc, expected=f"`{key}:`")
    name = _expect(raw["name"], str, "`name`", raw.loc_of("name"), "a string")
    description = _expect(
        raw.get("description", ""), str, "`description`", raw.loc_of("description"), "a string"
    )
    base = _expect(raw["base"], str, "`base`", raw.loc_of("base"), "a zoo name or a spec path")
    source, base_params = _base_params(base, Path(file).parent, raw.loc_of("base"))
    checker = _Checker(base_params)
    fixed = checker.fixed(raw)
    search = raw.get("search", "grid")
    if search not in SEARCHES:
        raise SpecError(
            "unknown search",
            loc=raw.loc_of("search"),
            expected=" | ".join(SEARCHES),
            found=_short(search),
            hint=did_you_mean(str(search), SEARCHES),
        )
    axes: dict[str, list[Any]] = {}
    points: list[dict[str, Any]] = []
    for key in NEEDS[search]:
        if key not in raw:
            raise SpecError(
                f"search: {search} needs `{key}:`", loc=raw.loc_of("search"), expected=f"`{key}:`"
            )
    for key, searches in ONLY.items():
        if key in raw and search not in searches:
            raise SpecError(
                f"`{key}:` has no meaning with search: {search}",
                loc=raw.key_locs[key],
                hint="remove it, or change `search:`",
            )
    if search == "list":
        items = _expect(raw["points"], LList, "`points`", raw.loc_of("points"), "a list")
        if not items:
            raise SpecError("`points` is empty", loc=raw.loc_of("points"), expected="a point")
        for i, item in enumerate(items):
            where = items.loc_of(i)
            item = _expect(item, LDict, f"point {i}", where, "a mapping of settings")
            assigned = checker.assignments(item, f"point {i}", values=False)
            points.append({k: checker.setting(k, v, loc) for k, (v, loc) in assigned.items()})
    else:
        axes_raw = _expect(raw["axes"], LDict, "`axes`", raw.loc_of("axes"), "a mapping")
        for key, (values, _) in checker.assignments(axes_raw, "`axes`", values=True).items():
            axes[key] = [checker.setting(key, v, values.loc_of(i)) for i, v in enumerate(values)]
    samples = _positive(raw, "samples", 1) if search == "random" else None
    if samples is not None and samples > math.prod(len(v) for v in axes.values()):
        raise SpecError(
            "`samples` is larger than the grid",
            loc=raw.loc_of("samples"),
            expected=f"at most {math.prod(len(v) for v in axes.values())} (the axes' combinations)",
            found=str(samples),
            hint="use search: grid to run every combination",
        )
    seed = _expect(raw.get("seed", 0), int, "`seed`", raw.loc_of("seed"), "an integer")
    metrics = _metrics(raw)
    latency = _expect(
        raw.get("latency", LDict(loc=raw.loc)),
        LDict,
        "`latency`",
        raw.loc_of("latency"),
        "a mapping with warmup and repeats",
    )
    _keys(latency, LATENCY_KEYS, "`latency`")
    return SweepFile(
        name=name,
        description=description,
        path=Path(file),
        base=source,
        batch=_positive(raw, "batch", 1),
        threads=_positive(raw, "threads", 1),
        fixed=fixed,
        search=search,
        axes=axes,
        samples=samples,
        seed=seed,
        points=points,
        metrics=metrics,
        warmup=_positive(latency, "warmup", 3, minimum=0),
        repeats=_positive(latency, "repeats", 10),
        objectives=_objectives(raw, metrics),
    )


def load_sweep(path: str | Path) -> SweepFile:
    """Read and check a sweep file (errors are located SpecErrors)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise SpecError(f"cannot read the sweep file: {e.strerror}", loc=Loc(str(path))) from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(
            "the sweep file is too large",
            loc=Loc(str(path)),
            expected=f"at most {MAX_FILE_BYTES} bytes",
            found="more",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("the sweep file is not UTF-8 text", loc=Loc(str(path))) from None
    return parse_sweep(text, str(path))
