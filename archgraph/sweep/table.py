"""The results table: a CSV file that grows one complete line per finished point.

The header is written whole (a temporary file renamed into place); each point is then appended
as one line in one write(2) to a file opened with O_APPEND, and fsync'd before the next. Cells
never hold a line break (backslash, newline and carriage return are escaped as \\\\, \\n, \\r), so
a record is a line. A driver killed mid-write leaves at most a last line without its newline:
reading ignores it, and resuming cuts it off before appending.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from archgraph.errors import ArchgraphError, Loc

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}


def escape(text: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in text)


def unescape(text: str) -> str:
    out, chars = [], iter(text)
    for c in chars:
        out.append(_UNESCAPES.get(next(chars, ""), "\\") if c == "\\" else c)
    return "".join(out)


def cell(value: Any) -> str:
    """A value as the table writes it: '' for missing, repr for floats (exact round trip)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return escape(str(value))


def _line(cells: list[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue().encode("utf-8")


def _records(data: bytes, path: Path) -> tuple[list[list[str]], int]:
    """The complete lines' fields, and the byte length they span (a torn tail is left out)."""
    end = data.rfind(b"\n") + 1
    rows = list(csv.reader(io.StringIO(data[:end].decode("utf-8"))))
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise ArchgraphError(
                "the results table has a damaged line",
                loc=Loc(str(path), i),
                expected=f"{len(rows[0])} fields",
                found=f"{len(row)} fields",
                hint="remove the line and run again with --resume: its point will run again",
            )
    return rows, end


class ResultsTable:
    """Rows keyed by their `key` column; `open` creates the file or takes up an existing one."""

    def __init__(self, path: str | Path, columns: list[str]) -> None:
        self.path = Path(path)
        self.columns = columns

    def read(self) -> list[dict[str, str]]:
        """The complete rows, values unescaped (a torn last line is ignored)."""
        if not self.path.exists():
            return []
        rows, _ = _records(self.path.read_bytes(), self.path)
        if not rows:
            return []
        return [{k: unescape(v) for k, v in zip(rows[0], r, strict=True)} for r in rows[1:]]

    def open(self, resume: bool) -> list[dict[str, str]]:
        """Start the table, or with `resume` continue the one there; returns its finished rows."""
        from archgraph.outputs import write_file as write_atomic

        if not self.path.exists() or self.path.stat().st_size == 0:
            write_atomic(self.path, _line(self.columns))
            return []
        if not resume:
            raise ArchgraphError(
                "the output folder already holds a results table",
                loc=Loc(str(self.path)),
                hint="add --resume to finish that sweep, or give another --out",
            )
        data = self.path.read_bytes()
        rows, end = _records(data, self.path)
        if not rows or rows[0] != self.columns:
            raise ArchgraphError(
                "the results table was written by a different sweep",
                loc=Loc(str(self.path), 1),
                expected=",".join(self.columns),
                found=",".join(rows[0]) if rows else "no header",
                hint="give another --out for this sweep file",
            )
        if end < len(data):  # a line torn by a crash: its point runs again
            with self.path.open("r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
        return self.read()

    def append(self, row: Mapping[str, Any]) -> None:
        """One row as one fsync'd line (missing columns are empty)."""
        line = _line([cell(row.get(c)) for c in self.columns])
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            written = os.write(fd, line)
            if written != len(line):  # a full disk: leave a torn line for the next resume
                raise OSError(f"short write to {self.path}")
            os.fsync(fd)
        finally:
            os.close(fd)
