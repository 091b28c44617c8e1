"""Spec expressions are bounded in the work they do, not only in the size of their values: each
attack below is a short expression that kept `archgraph validate` busy for minutes before
(10**10 element comparisons, 10**8-element lists, big-integer powers). Each is now refused with
a located error naming the limit that stopped it, and `--limit` raises that limit."""

from __future__ import annotations

from pathlib import Path

import pytest

import archgraph
from archgraph import Limits
from archgraph.cli import main
from archgraph.errors import SpecError
from archgraph.spec.expr import Work, evaluate

# a block repeated 10,000 times: its expression is evaluated once per repetition, so the budget
# is the spec's, not one expression's
REPEATED = """\
name: w
params: {n: 99999}
inputs: {x: [4]}
blocks:
  u:
    params: {n: null}
    nodes: {a: {op: relu, in: input, when: "${EXPR}"}}
nodes:
  s: {block: u, in: x, repeat: 10000, n: $n}
"""


def load_error(text: str, limits: Limits | None = None, **params: object) -> SpecError:
    with pytest.raises(SpecError) as err:
        archgraph.spec.load_spec_text(text, "s.yaml", limits=limits or Limits(), params=params)
    e = err.value
    assert e.loc is not None and (e.loc.file, e.loc.line) == ("s.yaml", 7), str(e)
    str(e)  # the message formats
    return e


@pytest.mark.parametrize(
    ("expr", "what"),
    [
        ("[0]*n == [0]*n", "repeating"),  # comparisons of long lists
        ("[1]*n < [1]*n", "repeating"),
        ("n in range(n)", "range()"),  # `in`
        ("max(range(n)) > 0", "range()"),  # min / max
        ("min(range(n)) == 0", "range()"),
        ("len('a'*n) > 0", "repeating"),  # repetition
    ],
)
def test_work_over_the_spec_is_bounded(expr: str, what: str) -> None:
    e = load_error(REPEATED.replace("EXPR", expr))
    assert "expression does too much work" in e.message and what in e.message
    assert "--limit expr_work=N" in (e.hint or "") and "Limits.max_expr_work" in (e.hint or "")
    assert e.node is not None and e.node.startswith("s.")


@pytest.mark.parametrize(
    "expr",
    [
        "[0]*n == [0]*n",
        "[0]*n in [[0]*n]",
        "max([0]*n + [1]) == 1",
        "min(range(n)) == 0",
        "'a'*n != 'b'*n",
    ],
)
def test_each_operation_is_charged_the_elements_it_touches(expr: str) -> None:
    work = Work(Limits(max_expr_work=150_000))
    with pytest.raises(SpecError) as err:
        evaluate("${" + expr + "}", {"n": 99_999}, work=work)
    assert "too much work" in err.value.message
    assert work.done > 150_000  # the counter tripped, before the operation ran
    assert evaluate("${" + expr + "}", {"n": 99_999}, work=Work()) is True


@pytest.mark.parametrize(
    "expr",
    [
        "[[0]*99999]*99999 == [[0]*99999]*99999",  # 10**10 comparisons, values of 10**5 refs
        "[0]*99999 in [[0]*99999]*99999",
        "max([[0]*99999]*99999)",
        "[0]*10**8",
    ],
)
def test_nested_repetition_counts_every_element(expr: str) -> None:
    text = REPEATED.replace("EXPR", expr).replace("repeat: 10000", "repeat: 1")
    e = load_error(text)
    assert "expression value too long" in e.message and "--limit expr_items=N" in (e.hint or "")


def test_big_integers_are_refused_before_they_are_computed() -> None:
    huge = 10**5000  # beyond the 4300 digits Python will print
    for expr, found in [
        ("n ** 64 > 0", "at least"),  # about 10**320000, never computed
        ("n * n > 0", "at least"),
        ("n + 1 > 0", "about 5001 digits"),
        ("2 ** n > 0", "about 5001 digits"),
        ("round(1.5, n) > 0", "about 5001 digits"),
    ]:
        text = REPEATED.replace("EXPR", expr).replace("repeat: 10000", "repeat: 1")
        e = load_error(text, n=huge)
        assert found in (e.found or ""), (expr, str(e))
        assert len(str(e)) < 1000


def test_limit_raises_the_bound(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = REPEATED.replace("EXPR", "[0]*n == [0]*n").replace("repeat: 10000", "repeat: 40")
    load_error(text)  # 40 x 300,000 elements is over the default budget of 10**7
    raised = Limits(max_expr_work=20_000_000)
    assert len(archgraph.spec.load_spec_text(text, "s.yaml", limits=raised)) == 41
    spec = tmp_path / "w.yaml"
    spec.write_text(text)
    assert main(["validate", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "too much work" in err and f"{spec}:7:" in err and "Traceback" not in err
    assert main(["validate", str(spec), "--limit", "expr_work=20000000"]) == 0
