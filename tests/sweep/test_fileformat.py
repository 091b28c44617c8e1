"""Sweep files: located errors for bad ones (and exit 2 from the CLI), points for good ones."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from archgraph.errors import SpecError
from archgraph.sweep.fileformat import load_sweep
from archgraph.sweep.space import expand, point_key

HERE = Path(__file__).parent
GOOD = """\
name: t
base: tiny.yaml
params: {classes: 4}
axes:
  params: {width: [4, 8, 12]}
  prune: [null, channels=0.5]
metrics: [params, macs]
objectives: {params: min, macs: min}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "tiny.yaml").write_text((HERE / "tiny.yaml").read_text())
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def error(tmp_path: Path, text: str) -> SpecError:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_sweep(path)
    assert err.value.loc is not None and err.value.loc.file == str(path)
    return err.value


def where(text: str, token: str, nth: int = 0) -> tuple[int, int]:
    """1-based line and column of the nth occurrence of `token`, found independently."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(token, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def loc(e: SpecError) -> tuple[int | None, int | None]:
    assert e.loc is not None
    return e.loc.line, e.loc.col


@pytest.mark.parametrize(
    ("old", "new", "token", "message", "hint"),
    [
        ("metrics:", "metrix:", "metrix", "unknown key 'metrix'", "metrics"),
        ("{width: [4", "{widht: [4", "widht", "no parameter 'widht'", "width"),
        ("channels=0.5]", "chanels=0.5]", "chanels=0.5", "the first item names", "channels"),
        ("channels=0.5]", "channels=1.5]", "channels=1.5", "out of range", None),
        ("[params, macs]", "[params, maks]", "maks", "unknown metric 'maks'", "macs"),
        ("macs: min}", "flops: min}", "flops", "not a column the metrics record", None),
        ("macs: min}", "macs: down}", "down", "needs a direction", None),
        ("[null, channels", "[7, channels", "7", "wrong type", None),
        ("base: tiny.yaml", "base: resnet5", "resnet5", "no spec file or zoo spec", "resnet50"),
        ("prune: [null", "rewrite: [dense-to-os", "dense-to-os", "unknown rewrite", "dense-to-osa"),
        ("{width: [4, 8, 12]}", "{width: []}", "[]", "has no values", None),
    ],
)
def test_bad_sweep_files_are_located(
    tmp_path: Path, old: str, new: str, token: str, message: str, hint: str | None
) -> None:
    text = GOOD.replace(old, new)
    if "rewrite: [dense-to-os" in text:
        text = text.replace("channels=0.5]", "null]")
    e = error(tmp_path, text)
    assert message in e.message, str(e)
    assert loc(e) == where(text, token), str(e)
    if hint:
        assert hint in (e.hint or ""), str(e)


def test_dense_to_osa_is_a_prune_error_not_a_rewrite(tmp_path: Path) -> None:
    # 'dense-to-osa' under prune is parsed as a prune option and rejected where it is written
    text = GOOD.replace("[null, channels=0.5]", "[null, dense-to-osa]")
    e = error(tmp_path, text)
    assert loc(e) == where(text, "dense-to-osa") and "KEY=VALUE" in e.message


def test_search_settings_must_fit_the_search(tmp_path: Path) -> None:
    text = GOOD + "samples: 3\n"
    e = error(tmp_path, text)
    assert "no meaning with search: grid" in e.message and loc(e) == where(text, "samples")
    text = GOOD + "search: random\nsamples: 7\n"
    e = error(tmp_path, text)
    assert "larger than the grid" in e.message and e.expected and "at most 6" in e.expected
    assert loc(e) == where(text, "7")
    text = GOOD + "search: random\n"
    e = error(tmp_path, text)
    assert "needs `samples:`" in e.message and loc(e) == where(text, "random")


def test_yaml_problems_are_located(tmp_path: Path) -> None:
    text = GOOD + "name: again\n"
    e = error(tmp_path, text)
    assert "duplicate key 'name'" in e.message and loc(e) == where(text, "name", 1)
    text = GOOD.replace("classes: 4", "classes: !!python/object:os.system 4")
    e = error(tmp_path, text)
    assert "not allowed" in e.message and loc(e)[0] == 3


def test_the_cli_exits_2_without_traceback_or_output(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("metrics:", "metrix:"))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "archgraph.cli", "sweep", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    line, col = where(path.read_text(), "metrix")
    assert proc.stderr.startswith(f"{path}:{line}:{col}: error: unknown key 'metrix'")
    assert "Traceback" not in proc.stderr and not out.exists()


def test_grid_is_every_combination_in_order(tmp_path: Path) -> None:
    points = expand(load_sweep(write(tmp_path, GOOD)))
    expected = list(itertools.product([4, 8, 12], [(), ("channels=0.5",)]))
    assert [(p.settings.params["width"], p.settings.prune) for p in points] == expected
    assert [p.index for p in points] == list(range(6))
    assert all(p.settings.params["classes"] == 4 for p in points)
    assert len({p.key for p in points}) == 6


def test_random_draws_distinct_points_reproducibly(tmp_path: Path) -> None:
    text = GOOD + "search: random\nsamples: 4\nseed: 3\n"
    first = expand(load_sweep(write(tmp_path, text)))
    again = expand(load_sweep(write(tmp_path, text)))
    other = expand(load_sweep(write(tmp_path, text.replace("seed: 3", "seed: 4"))))
    grid = {p.key for p in expand(load_sweep(write(tmp_path, GOOD)))}
    keys = [p.key for p in first]
    assert len(set(keys)) == 4 and set(keys) <= grid
    assert keys == [p.key for p in again]
    assert keys != [p.key for p in other]


def test_list_points_put_their_settings_over_the_fixed_ones(tmp_path: Path) -> None:
    text = """\
name: t
base: tiny.yaml
opt_level: 1
search: list
points:
  - {params: {width: 4}}
  - {params: {width: 6}, prune: [channels=0.25, weights=0.5], opt_level: 2}
metrics: [params, macs]
objectives: {params: min, macs: min}
"""
    a, b = expand(load_sweep(write(tmp_path, text)))
    assert (a.settings.params, a.settings.prune, a.settings.opt_level) == ({"width": 4}, (), 1)
    assert (b.settings.params, b.settings.prune, b.settings.opt_level) == (
        {"width": 6},
        ("channels=0.25", "weights=0.5"),
        2,
    )
    assert point_key(b.settings) == b.key != a.key
    same = text.replace(
        "{params: {width: 6}, prune: [channels=0.25, weights=0.5], opt_level: 2}",
        "{params: {width: 4}, opt_level: 1}",
    )
    with pytest.raises(SpecError, match="points 0 and 1 have the same settings"):
        expand(load_sweep(write(tmp_path, same)))


def test_the_example_has_at_least_24_points() -> None:
    sweep = load_sweep(Path(__file__).parents[2] / "examples" / "sweep_vovnet.yaml")
    points = expand(sweep)
    assert len(points) >= 24
    assert {p.settings.prune for p in points} >= {(), ("channels=0.5",)}
    assert len({p.settings.params["layers_per_block"] for p in points}) >= 2
