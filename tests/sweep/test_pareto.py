"""The Pareto front, on points whose front is worked out by hand."""

from __future__ import annotations

from archgraph.sweep.pareto import dominates, pareto_front


def rows(*pairs: tuple[str, str], status: str = "ok") -> list[dict[str, str]]:
    return [{"status": status, "cost": a, "score": b} for a, b in pairs]


def test_dominates() -> None:
    assert dominates((1, 1), (1, 2)) and dominates((0, 0), (1, 1))
    assert not dominates((1, 1), (1, 1)) and not dominates((0, 2), (1, 1))


def test_front_minimizing_cost_and_maximizing_score() -> None:
    # cost/score: A(1,1) B(2,3) C(3,2) D(4,5) E(4,4) F(5,5); C is beaten by B, E by D, F by D
    table = rows(("1", "1"), ("2", "3"), ("3", "2"), ("4", "5"), ("4", "4"), ("5", "5"))
    assert pareto_front(table, {"cost": "min", "score": "max"}) == [0, 1, 3]
    # both minimized: only A(1,1) survives
    assert pareto_front(table, {"cost": "min", "score": "min"}) == [0]


def test_failed_rows_missing_values_and_ties() -> None:
    table = rows(("1", "9"), ("1", "9"), ("2", "1"))
    table += rows(("0", "99"), status="error")  # would beat everything, but failed
    table += [
        {"status": "ok", "cost": "", "score": "100"},
        {"status": "ok", "cost": "nan", "score": "100"},
    ]
    assert pareto_front(table, {"cost": "min", "score": "max"}) == [0, 1]
