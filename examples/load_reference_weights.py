"""Load a torchvision ResNet-50 state_dict into the zoo spec and check the outputs agree.

The zoo names its nodes like torchvision, so the state_dict loads strictly, by name. Here the
reference model is randomly initialized (nothing is downloaded); with pretrained weights the
call is the same: archgraph.compile(graph, weights=state_dict).

    bash scripts/dev python examples/load_reference_weights.py
"""

from __future__ import annotations

import torch
import torchvision

import archgraph


def main() -> None:
    reference = torchvision.models.resnet50(weights=None).eval()
    state = reference.state_dict()
    module = archgraph.compile(archgraph.load("resnet50"), weights=state).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        diff = (module(x) - reference(x)).abs().max().item()
    print(f"loaded {len(state)} tensors strictly; max |archgraph - torchvision| = {diff:.2e}")


if __name__ == "__main__":
    main()
