"""Training data shaped to a spec's input: scikit-learn's bundled 8x8 digits (no download) or a
user's torchvision ImageFolder directory (one sub-folder per class).

Digits (1797 images, 10 classes, values 0..16) are scaled to [0, 1], upscaled bilinearly to
the input's height and width, replicated over its channels, and split into train and
validation sets by a seeded permutation. An ImageFolder is resized to the input (grayscale for
one channel, RGB for three) and split the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from archgraph.errors import ArchgraphError, Loc
from archgraph.ir.graph import Graph

DIGITS = "digits"


@dataclass(frozen=True)
class Data:
    """Train and validation tensors (N, C, H, W) float32 and labels (N,) int64."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    classes: tuple[str, ...]


def image_input(graph: Graph) -> tuple[int, int, int]:
    """(channels, height, width) of the graph's one image input; a located error otherwise."""
    if len(graph.inputs) != 1:
        raise ArchgraphError(
            f"'{graph.name}' has {len(graph.inputs)} inputs; training needs one image input",
            expected="one input of shape [C, H, W]",
            found=", ".join(graph.inputs) or "none",
        )
    node = graph[graph.inputs[0]]
    shape = node.type.shape
    if len(shape) != 4 or node.type.dtype != "float32":
        raise ArchgraphError(
            "training needs an image input",
            loc=node.loc,
            node=node.id,
            expected="float32 [C, H, W] (batch first)",
            found=f"{node.type.dtype} {list(shape[1:])}",
        )
    return shape[1], shape[2], shape[3]


def _split(
    x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int
) -> tuple[torch.Tensor, ...]:
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(val_fraction * len(y)))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def fit(images: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """(N, 1, h, w) images -> (N, channels, height, width): bilinear resize, channels replicated."""
    out = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
    return out.expand(-1, channels, -1, -1).contiguous()


def digits(shape: tuple[int, int, int], *, val_fraction: float = 0.2, seed: int = 0) -> Data:
    """scikit-learn's 8x8 digits fitted to `shape` (C, H, W)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = fit(images, *shape)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    classes = tuple(str(c) for c in bunch.target_names)
    return Data(DIGITS, *_split(x, y, val_fraction, seed), classes=classes)


def image_folder(
    root: str | Path, shape: tuple[int, int, int], *, val_fraction: float = 0.2, seed: int = 0
) -> Data:
    """A torchvision ImageFolder directory fitted to `shape`; every image is loaded once."""
    from torchvision import datasets, transforms

    channels, height, width = shape
    where = Loc(str(root))
    if not Path(root).is_dir():
        raise ArchgraphError(
            "the training data is not a directory",
            loc=where,
            expected=f"'{DIGITS}' or a folder with one sub-folder of images per class",
            found="no such directory" if not Path(root).exists() else "a file",
        )
    if channels not in (1, 3):
        raise ArchgraphError(
            "an image folder feeds 1 (grayscale) or 3 (RGB) channels",
            loc=where,
            found=f"the spec's input has {channels} channels",
        )
    tf = transforms.Compose(
        [
            transforms.Grayscale(1)
            if channels == 1
            else transforms.Lambda(lambda im: im.convert("RGB")),
            transforms.Resize((height, width)),
            transforms.ToTensor(),
        ]
    )
    try:
        folder = datasets.ImageFolder(str(root), transform=tf)
    except (FileNotFoundError, OSError) as e:
        raise ArchgraphError(
            "the training data folder has no images in class sub-folders",
            loc=where,
            expected="ROOT/<class>/<image>.png|jpg|... (torchvision ImageFolder)",
            found=str(e).splitlines()[0],
        ) from None
    if len(folder.classes) < 2:
        raise ArchgraphError(
            "the training data needs at least two classes",
            loc=where,
            expected="one sub-folder per class",
            found=", ".join(folder.classes),
        )
    xs, ys = [], []
    for i, (path, label) in enumerate(folder.samples):
        try:
            xs.append(folder[i][0])
        except OSError as e:
            raise ArchgraphError(
                "cannot read an image", loc=Loc(path), found=str(e).splitlines()[0]
            ) from None
        ys.append(label)
    x = torch.stack(xs)
    y = torch.tensor(ys, dtype=torch.int64)
    return Data(str(root), *_split(x, y, val_fraction, seed), classes=tuple(folder.classes))


def load_data(source: str, graph: Graph, *, val_fraction: float = 0.2, seed: int = 0) -> Data:
    """'digits' or an ImageFolder path, fitted to the graph's input; the graph's output must
    have one logit per class."""
    shape = image_input(graph)
    if source == DIGITS:
        data = digits(shape, val_fraction=val_fraction, seed=seed)
    else:
        data = image_folder(source, shape, val_fraction=val_fraction, seed=seed)
    out = graph[graph.outputs[0]]
    found = out.type.shape
    if len(graph.outputs) != 1 or len(found) != 2 or found[1] != len(data.classes):
        raise ArchgraphError(
            f"'{graph.name}' does not output one logit per class of {data.name}",
            loc=out.loc,
            node=out.id,
            expected=f"one output [{len(data.classes)}] (classes {', '.join(data.classes[:10])})",
            found=", ".join(f"{o} {list(graph[o].type.shape[1:])}" for o in graph.outputs),
            hint=f"--set num_classes={len(data.classes)} if the spec has that parameter",
        )
    return data
