"""The YAML spec front end: safe, located loading and interpretation into Builder calls."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from archgraph.errors import Loc, SpecError, did_you_mean
from archgraph.ir.graph import Graph
from archgraph.spec.bounded import RuleCrash
from archgraph.spec.interpret import build_graph
from archgraph.spec.limits import Limits, limit_hint
from archgraph.spec.yaml_source import parse_yaml

__all__ = ["Limits", "RuleCrash", "load_spec", "load_spec_text", "zoo_names", "zoo_path"]


def zoo_names() -> list[str]:
    """Names of the specs shipped with archgraph (specs/*.yaml)."""
    return sorted(
        p.name[:-5]
        for p in resources.files("archgraph.specs").iterdir()
        if p.name.endswith(".yaml")
    )


def zoo_path(name: str) -> Path:
    return Path(str(resources.files("archgraph.specs").joinpath(f"{name}.yaml")))


def resolve_source(source: str | Path) -> Path:
    """A spec path, or the path of a zoo spec by name."""
    path = Path(source)
    if path.is_file():
        return path
    name = str(source)
    if name in zoo_names():
        return zoo_path(name)
    hint = did_you_mean(name, zoo_names()) or "`archgraph zoo` lists the built-in specs"
    raise SpecError(f"no spec file or zoo spec named '{name}'", loc=Loc(name), hint=hint)


def load_spec_text(
    text: str,
    file: str = "<spec>",
    *,
    batch: int = 1,
    params: Mapping[str, Any] | None = None,
    limits: Limits = Limits(),
) -> Graph:
    """Load a spec from its text; `file` names it in errors."""
    return build_graph(
        parse_yaml(text, file, limits), file, batch=batch, params=params, limits=limits
    )


def load_spec(
    source: str | Path,
    *,
    batch: int = 1,
    params: Mapping[str, Any] | None = None,
    limits: Limits = Limits(),
) -> Graph:
    path = resolve_source(source)
    file = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(limits.max_bytes + 1)  # never more than the limit, whatever the file is
    except OSError as e:
        raise SpecError(f"cannot read the spec: {e.strerror}", loc=Loc(file)) from None
    if len(raw) > limits.max_bytes:
        raise SpecError(
            "the spec file is too large",
            loc=Loc(file),
            expected=f"at most {limits.max_bytes} bytes",
            found="more",
            hint=limit_hint("max_bytes"),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = (
            len(raw[raw.rfind(b"\n", 0, e.start) + 1 : e.start].decode("utf-8", errors="replace"))
            + 1
        )
        raise SpecError(
            "the spec is not UTF-8 text",
            loc=Loc(file, line, col),
            expected="UTF-8",
            found=f"byte {raw[e.start : e.start + 1]!r} ({e.reason})",
            hint="save the file as UTF-8",
        ) from None
    return load_spec_text(text, str(path), batch=batch, params=params, limits=limits)
