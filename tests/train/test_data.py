"""Training data: digits upscaled bilinearly (checked by hand), replicated over channels, split
by seed; an ImageFolder resized to the input; bad sources as located errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archgraph.errors import ArchgraphError
from archgraph.train.data import digits, image_folder, load_data
from tests.train.helpers import tiny_graph


def test_digits_upscaled_by_hand() -> None:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    data = digits((3, 16, 16), val_fraction=0.2, seed=0)
    assert data.x_train.shape == (1438, 3, 16, 16) and data.x_val.shape == (359, 3, 16, 16)
    assert data.classes == tuple(str(i) for i in range(10))
    assert torch.equal(data.x_val[:, 0], data.x_val[:, 2])  # channels replicated
    # the split: a seeded permutation, its first 359 held out
    order = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    i = int(order[0])
    assert int(data.y_val[0]) == int(bunch.target[i])
    img = bunch.images[i] / 16
    # bilinear x2 with half-pixel centres: output (1, 1) samples the input at (0.25, 0.25),
    # output (0, 0) at (-0.25, -0.25), clamped to (0, 0)
    a, b, c, d = img[0, 0], img[0, 1], img[1, 0], img[1, 1]
    assert float(data.x_val[0, 1, 1, 1]) == pytest.approx(
        0.5625 * a + 0.1875 * b + 0.1875 * c + 0.0625 * d, abs=1e-6
    )
    assert float(data.x_val[0, 0, 0, 0]) == pytest.approx(a, abs=1e-6)
    assert torch.equal(digits((3, 16, 16), seed=0).y_val, data.y_val)
    assert not torch.equal(digits((3, 16, 16), seed=1).y_val, data.y_val)


def _folder(root: Path, classes: int = 2, per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for j in range(per_class):
            pixels = rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{j}.png")
    return root


def test_image_folder_resized_to_the_input(tmp_path: Path) -> None:
    data = image_folder(_folder(tmp_path / "imgs"), (3, 8, 8), val_fraction=0.25)
    assert data.classes == ("class0", "class1")
    assert data.x_train.shape == (9, 3, 8, 8) and data.x_val.shape == (3, 3, 8, 8)
    gray = image_folder(tmp_path / "imgs", (1, 8, 8))
    assert gray.x_train.shape[1] == 1


def test_bad_data_sources_are_located(tmp_path: Path) -> None:
    graph = tiny_graph()
    with pytest.raises(ArchgraphError, match="not a directory") as e:
        load_data(str(tmp_path / "nope"), graph)
    assert str(tmp_path / "nope") in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchgraphError, match="no images") as e:
        load_data(str(tmp_path / "empty"), graph)
    assert str(tmp_path / "empty") in str(e.value)
    three = _folder(tmp_path / "three", classes=3, per_class=2)
    with pytest.raises(ArchgraphError, match="one logit per class") as e:
        load_data(str(three), graph)  # the spec has 10 classes
    assert "num_classes=3" in str(e.value) and "fc" in str(e.value)
