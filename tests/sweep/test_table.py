"""The results table: one line per point, torn tails ignored and cut off on resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from archgraph.errors import ArchgraphError
from archgraph.sweep.table import ResultsTable, escape, unescape

COLUMNS = ["point", "key", "error"]


def test_cells_with_line_breaks_and_commas_stay_on_one_line(tmp_path: Path) -> None:
    table = ResultsTable(tmp_path / "r.csv", COLUMNS)
    table.open(resume=False)
    message = 'a.yaml:3:4: error: bad, "really"\n  hint: C:\\path\\n is not a newline\r'
    table.append({"point": 0, "key": "k0", "error": message})
    table.append({"point": 1, "key": "k1"})
    lines = (tmp_path / "r.csv").read_bytes().split(b"\n")
    assert lines[0] == b"point,key,error" and len(lines) == 4 and lines[-1] == b""
    rows = table.read()
    assert rows == [
        {"point": "0", "key": "k0", "error": message},
        {"point": "1", "key": "k1", "error": ""},
    ]


@pytest.mark.parametrize("text", ["", "\\", "a\\nb", "\\\\n", "x\ny\\", "tab\tend"])
def test_escape_round_trips(text: str) -> None:
    assert "\n" not in escape(text) and unescape(escape(text)) == text


def test_a_torn_last_line_is_ignored_then_cut_off_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    table = ResultsTable(path, COLUMNS)
    table.open(resume=False)
    table.append({"point": 0, "key": "k0"})
    whole = path.read_bytes()
    with path.open("ab") as f:
        f.write(b"1,k1,half a li")  # a driver killed inside its write
    assert [r["key"] for r in table.read()] == ["k0"]
    assert [r["key"] for r in ResultsTable(path, COLUMNS).open(resume=True)] == ["k0"]
    assert path.read_bytes() == whole
    table.append({"point": 1, "key": "k1"})
    assert [r["key"] for r in table.read()] == ["k0", "k1"]


def test_an_existing_table_needs_resume_and_the_same_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    ResultsTable(path, COLUMNS).open(resume=False)
    with pytest.raises(ArchgraphError, match="already holds a results table") as e:
        ResultsTable(path, COLUMNS).open(resume=False)
    assert "--resume" in (e.value.hint or "")
    with pytest.raises(ArchgraphError, match="different sweep"):
        ResultsTable(path, ["point", "key", "macs"]).open(resume=True)


def test_a_damaged_middle_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("point,key,error\n0,k0,\n1,k1\n2,k2,\n")
    with pytest.raises(ArchgraphError, match="damaged line") as e:
        ResultsTable(path, COLUMNS).read()
    assert e.value.loc is not None and e.value.loc.line == 3
