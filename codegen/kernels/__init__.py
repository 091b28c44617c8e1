"""Kernels behind the fused ops (installed as archgraph.codegen.kernels): the fused-group interface.

A fused group is one IR node, made by a pass (archgraph.passes), that stands for several nodes
of the source graph. Its meaning is entirely its op, its args and its tensors, never the graph
around it, so a backend can compute it from the node alone:

- `fused_pointwise` (archgraph.ops.fused): `steps`, a list of ("name",) / ("name", operand)
  applied in order to a running value that starts as input 0. Every step kind is a
  `PointwiseStep` its op declares (archgraph.ops.registry.get_step): its operand kind ("" none, "float" a constant, "input" an input
  index with broadcasting, "params" per-channel `step<i>.scale` / `step<i>.shift` along dim 1)
  its C expression over x (and y, factor, scale, shift), from which a kernel is rendered, and
  its torch functions, which the CPU path runs.
- `conv2d_fused` / `linear_fused` (archgraph.ops.fused_conv):
  act(layer(pre_act(x * pre_scale + pre_shift), weight, bias) + residual), each part optional
  (args pre_affine, pre_activation, residual, activation, prepack).
- `buffer_init` / `buffer_write` / `buffer_prefix` (archgraph.ops.fused_buffer): a dense
  block's preallocated concatenation, written one slice per layer, read through prefix views.
- `sdpa`, `mhsa_sdpa`, `sr_attention_sdpa` (archgraph.ops.fused_attention) and `memory_format`,
  `narrow` (archgraph.ops.fused_layout) call torch directly (no kernel of ours).

How a backend implements a group: the fused ops' runtimes (codegen/runtimes.py, registered by
op name) call exactly one function per group, in `cpu`:

    pointwise_chain(steps, inputs, affines)                     -> Tensor
    conv2d_fused(x, residual, weight, bias, *, stride, padding, dilation, groups, act,
                 pre_scale, pre_shift, pre_act, prepack, cache)  -> Tensor
    linear_fused(x, residual, weight, bias, *, act, prepack, cache) -> Tensor
    buffer_init(x, channels) -> Tensor;  buffer_write(buf, y, offset) -> buf (in place)

A backend (the CUDA renderer in codegen/kernels/cuda/) provides functions with these
signatures and this meaning for tensors on its device, and is chosen by the inputs' device;
the torch code in `cpu` is the reference semantics (it also runs on any device torch supports)
that a backend's tests compare against, together with the unfused -O0 graph. Contract: inputs
are never modified (except `buf` by buffer_write); the result has the op's inferred shape and
dtype; pointwise_chain, conv2d_fused and linear_fused are differentiable under autograd (their
in-place shortcuts apply only when no gradient is needed), while dense-block buffers, written in
place, serve inference (what -O1/-O2 modules are for). Changing a signature or a step's meaning changes this interface: the
ops, `cpu` and every backend move together.
"""
