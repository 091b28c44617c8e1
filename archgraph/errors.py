"""Errors for people: every failure a user can cause names where, what was expected and what was found."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Loc:
    """A place in a source: a spec file (line/col 1-based) or a Python call site."""

    file: str
    line: int | None = None
    col: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)


class ArchgraphError(Exception):
    """Base of every error archgraph reports to a user (the CLI prints it and exits 2)."""

    def __init__(
        self,
        message: str,
        *,
        loc: Loc | None = None,
        node: str | None = None,
        expected: str | None = None,
        found: str | None = None,
        hint: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.node = node
        self.expected = expected
        self.found = found
        self.hint = hint
        self.field = field  # the spec key at fault (an argument name, "in", "op"), when known

    def located(self, loc: Loc | None, node: str | None = None) -> ArchgraphError:
        """Fill in a location and node id where the raiser did not know them."""
        if self.loc is None:
            self.loc = loc
        if self.node is None:
            self.node = node
        return self

    def __str__(self) -> str:
        head = f"{self.loc}: " if self.loc else ""
        where = f"node '{self.node}': " if self.node else ""
        lines = [f"{head}error: {where}{self.message}"]
        if self.expected is not None:
            lines.append(f"  expected: {self.expected}")
        if self.found is not None:
            lines.append(f"  found:    {self.found}")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class SpecError(ArchgraphError):
    """A spec (YAML or Python graph API) that does not describe a valid network."""


class GraphError(ArchgraphError):
    """An IR graph that fails verification (a pass or a hand-built graph broke an invariant)."""


class WeightsError(ArchgraphError):
    """A state_dict that does not fit the graph (missing, unexpected or mis-shaped tensors)."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
