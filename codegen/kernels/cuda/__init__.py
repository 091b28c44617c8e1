"""The CUDA path of the fused groups (see codegen/kernels/__init__.py for the interface).

    expr.py      one expression tree -> CUDA C and torch (host) evaluation; the registry's step
                 expressions parsed, derivatives taken symbolically; integer index expressions
    index.py     iteration space in the output's memory order, coalesced; each tensor's address
    pointwise.py chains of steps -> forward/backward programs -> kernels (vectorized where the
                 tensors are laid out like the iteration), and `run_host`
    rowwise.py   softmax and layer norm row kernels (one block a row), and `run_host`
    groups.py    the chain of each fused op; every kernel the renderer emits for a graph
    nvrtc.py     NVRTC straight to a cubin for an explicit arch (no GPU needed)
    runtime.py   CuPy: load, cache (process and ~/.cache/archgraph/kernels), launch on torch's
                 current stream, zero-copy
    functions.py autograd Functions over kernels; CUDA and host launchers
    dispatch.py  the fused ops' entry points: CUDA tensors -> kernels, else the CPU path
    emit.py      `archgraph compile --emit-kernels DIR`

Nothing here imports CuPy at import time: the runtime imports it on the first launch on a CUDA
tensor, so a machine without CUDA never loads it. Kernels compute in fp32 whatever the storage
(fp32, fp16, bf16); sizes and strides are constants of each source, with the launch
configuration written in it as a comment.
"""
