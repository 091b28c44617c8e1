"""A tiny spec and data subset for training tests: the example's small ResNet at width 4 on
digits kept at 8x8, 256 training samples (8 steps per epoch at batch 32)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import archgraph
from archgraph.ir.graph import Graph
from archgraph.train.data import Data, load_data

SPEC = Path(__file__).resolve().parents[2] / "examples" / "small_resnet.yaml"
TINY = {"width": 4, "image_size": 8, "num_classes": 10}


def tiny_graph() -> Graph:
    return archgraph.load(SPEC, **TINY)


def tiny_data(graph: Graph, n: int = 256) -> Data:
    data = load_data("digits", graph, seed=0)
    return dataclasses.replace(data, x_train=data.x_train[:n], y_train=data.y_train[:n])
