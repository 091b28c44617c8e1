"""The CUDA path of the fused groups: CUDA C rendered from the groups, compiled by NVRTC,
launched through CuPy on PyTorch's stream, differentiable (see docs/ARCHITECTURE.md).

Nothing here imports CuPy at import time: the runtime imports it on the first launch on a CUDA
tensor, so a machine without CUDA never loads it.
"""
