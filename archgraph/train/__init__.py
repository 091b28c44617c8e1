"""Training compiled graphs: data shaped to a spec's input, a loop with sparse schedules (GMP,
random ERK, GraNet) or fixed masks, atomic checkpoints that resume exactly.

    graph = archgraph.load("resnet18", num_classes=10, image_size=32)
    data = load_data("digits", graph)
    result = train(graph, data, TrainConfig(epochs=5, schedule="granet", sparsity=0.9))
"""

from archgraph.train.data import Data, load_data
from archgraph.train.loop import EpochRow, TrainConfig, TrainResult, compile_for_training, train
from archgraph.train.schedules import SCHEDULES, make_schedule

__all__ = [
    "SCHEDULES",
    "Data",
    "EpochRow",
    "TrainConfig",
    "TrainResult",
    "compile_for_training",
    "load_data",
    "make_schedule",
    "train",
]
