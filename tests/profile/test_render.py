"""The HTML report as a browser shows it: headless Chromium renders it (screenshot: exists, not
blank, node colors on screen), and the DOM after its scripts ran has exactly one SVG shape per
graph node and a table its own script sorts. Chromium comes from scripts/install-chromium (run
here when it is missing)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

import archgraph
from archgraph.outputs import write_file
from archgraph.profile import profile
from archgraph.profile.html import heat
from archgraph.profile.outputs import render_file

ROOT = Path(__file__).resolve().parents[2]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    if shutil.which("chromium") is None:
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-chromium")], check=True, timeout=1200
        )
    exe = shutil.which("chromium")
    assert exe is not None, "chromium is missing: run scripts/install-chromium"
    return exe


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    result = profile(archgraph.load("resnet18"), warmup=1, repeats=3)
    path = tmp_path_factory.mktemp("report") / "resnet18.html"
    write_file(path, render_file(result, "report"))
    yield path, result.to_json()


def browse(chromium: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile_dir = tmp_path / "chromium-profile"
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile_dir}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_screenshot_is_not_blank(chromium: str, report: tuple[Path, dict], tmp_path: Path) -> None:
    path, data = report
    png = tmp_path / "shot.png"
    browse(chromium, tmp_path, f"--screenshot={png}", "--window-size=1280,1400", path.as_uri())
    assert png.exists() and png.stat().st_size > 10_000
    pixels = (imread(png)[..., :3] * 255).round().astype(np.uint8)
    assert (pixels.reshape(-1, 3) != 255).any(axis=1).mean() > 0.02  # more than 2% not white
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    # the top of the drawing is on screen: the input node's grey and conv1's heat color
    top = max(n["share"] for n in data["nodes"])
    conv1 = next(n for n in data["nodes"] if n["id"] == "conv1")
    for color in ("#e8e8e8", heat(conv1["share"] / top)):
        rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)
        assert (pixels == rgb).all(axis=-1).sum() > 500, color  # a filled box, not a stray pixel


def test_rendered_dom_has_one_shape_per_node_and_a_sorted_table(
    chromium: str, report: tuple[Path, dict], tmp_path: Path
) -> None:
    path, data = report
    dom = browse(chromium, tmp_path, "--dump-dom", path.as_uri() + "#sort=latency_ms").stdout
    shapes = re.findall(r"<rect\b[^>]*>", dom)
    node_shapes = [s for s in shapes if 'class="node-shape' in s]
    ids = [re.search(r'data-id="([^"]*)"', s).group(1) for s in node_shapes]
    graph = archgraph.load("resnet18")
    assert len(node_shapes) == len(graph) and ids == [n.id for n in graph.nodes()]
    assert len(shapes) == len(node_shapes)  # no other rects: one shape per node
    # the page's own script sorted the node table by latency, slowest first
    assert 'data-sorted="latency_ms desc"' in dom
    table = dom[dom.index('<table id="nodes"') :]
    rows = re.findall(r'<tr data-node="([^"]+)"', table)
    slowest_first = [n["id"] for n in sorted(data["nodes"], key=lambda n: -n["latency_ms"])]
    assert rows == slowest_first
