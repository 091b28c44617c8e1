"""The spec fuzzer in CI: 1,050 mutated specs, each ending in success (and a faithful round trip)
or one located SpecError. Deterministic (derandomized) so CI is repeatable. No deadline: tests
never assert on time on a shared machine; the per-case time and memory limits are checked by the
long randomized run, benchmarks/fuzz_long.py (BENCHMARKS.md, "Spec fuzzing long run")."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.spec.fuzzing import check_case, data_mutation, structure_bomb, text_mutation


def fuzz(cases: int) -> settings:
    return settings(
        max_examples=cases,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


@fuzz(500)
@given(data_mutation())
def test_data_level_mutations(text: str) -> None:
    check_case(text)


@fuzz(400)
@given(text_mutation())
def test_text_level_mutations(text: str) -> None:
    check_case(text)


@fuzz(150)
@given(structure_bomb())
def test_parser_bombs(text: str) -> None:
    check_case(text)
