"""The Pareto front: the points no other point beats on every objective at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def _vector(row: Mapping[str, str], objectives: Mapping[str, str]) -> tuple[float, ...] | None:
    """The row's objective values, each turned so that smaller is better (None if any is missing)."""
    out = []
    for column, direction in objectives.items():
        text = row.get(column, "")
        if text == "":
            return None
        value = float(text)
        if value != value:  # NaN ranks nowhere
            return None
        out.append(value if direction == "min" else -value)
    return tuple(out)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """`a` is no worse than `b` on every objective and better on one (smaller is better)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def pareto_front(rows: Sequence[Mapping[str, str]], objectives: Mapping[str, str]) -> list[int]:
    """Indices into `rows` of the non-dominated ok rows (rows with equal objectives all stay)."""
    vectors = [_vector(r, objectives) if r.get("status") == "ok" else None for r in rows]
    candidates = [(i, v) for i, v in enumerate(vectors) if v is not None]
    return [i for i, v in candidates if not any(dominates(w, v) for j, w in candidates if j != i)]
