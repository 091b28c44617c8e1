"""Pointwise kernels: a chain of the registry's pointwise steps over broadcast operands,
rendered to CUDA C (forward, and backward by symbolic differentiation) and run on the host from
the very same program.

A `Chain` is what a fused group computes: a running value that starts as operand 0 and goes
through steps (declared by their ops, archgraph.ops.registry.PointwiseStep: relu, gelu,
[add, k], [affine], ...), each step's
variables bound to operands (inputs, per-channel vectors viewed to broadcast) or constants.
A `Program` is the straight-line code of one kernel thread: loads, SSA assignments of
`expr` trees, stores. A `PointwiseKernel` places a program on an iteration (index.py) and
renders it; `run_host` evaluates the same program and the same index expressions in torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import torch
from archgraph.codegen.kernels.cuda import expr as E
from archgraph.codegen.kernels.cuda.index import TORCH_DTYPES, Iteration, Layout, iterate
from archgraph.codegen.kernels.cuda.naming import HashNamed
from archgraph.codegen.kernels.cuda.preamble import C_TYPES, ITEM_BYTES

from archgraph.ops.registry import get_step

VEC = 4  # elements per thread in vectorized kernels (16 bytes of fp32, 8 of fp16/bf16)
THREADS = 256
INT32_LIMIT = 2**31 - 1


@cache
def step_expr(name: str) -> E.Expr:
    """The C expression a pointwise step's op declares, parsed (archgraph.ops.registry)."""
    return E.parse(get_step(name).expr)


@dataclass(frozen=True)
class Step:
    """One registry step; `operands` binds its variables (y, scale, shift) to operand indices,
    `factor` is the constant of a [scale, factor] step."""

    name: str
    operands: tuple[tuple[str, int], ...] = ()
    factor: float | None = None

    @property
    def expr(self) -> E.Expr:
        e = step_expr(self.name)
        return e if self.factor is None else E.substitute(e, {"factor": E.Num(self.factor)})

    def label(self, names: Sequence[str]) -> str:
        binds = [f"{var}={names[k]}" for var, k in self.operands]
        if self.factor is not None:
            binds.append(f"factor={self.factor!r}")
        return self.name + (f"({', '.join(binds)})" if binds else "")


@dataclass(frozen=True)
class Chain:
    """value = operands[0]; value = step(value) for each step. `names` label the operands."""

    names: tuple[str, ...]
    steps: tuple[Step, ...]

    def describe(self) -> str:
        return " -> ".join([self.names[0], *(s.label(self.names) for s in self.steps)])


@dataclass(frozen=True)
class Program:
    """Straight-line code of one element: loads (variable <- input k at its address), SSA
    assignments, stores (output k <- expression)."""

    loads: tuple[tuple[str, int], ...]
    assigns: tuple[tuple[str, E.Expr], ...]
    stores: tuple[tuple[int, E.Expr], ...]
    comment: tuple[str, ...] = ()


def _bind(step: Step, value: str) -> dict[str, E.Expr]:
    env: dict[str, E.Expr] = {"x": E.Var(value)}
    env.update({var: E.Var(f"a{k}") for var, k in step.operands})
    return env


def _loads(chain: Chain) -> list[tuple[str, int]]:
    used = sorted({0} | {k for s in chain.steps for _, k in s.operands})
    return [(f"a{k}", k) for k in used]


def forward_program(chain: Chain) -> Program:
    assigns = []
    value = "a0"
    for n, step in enumerate(chain.steps, start=1):
        assigns.append((f"v{n}", E.substitute(step.expr, _bind(step, value))))
        value = f"v{n}"
    return Program(tuple(_loads(chain)), tuple(assigns), ((0, E.Var(value)),),
                   (f"forward: {chain.describe()}",))  # fmt: skip


def backward_program(chain: Chain, needs: Sequence[int]) -> Program:
    """Gradients of the operands in `needs` (outputs in that order) from the output's gradient
    (input len(names)): the forward values are recomputed, then the steps walked backwards."""
    prog = forward_program(chain)
    values = ["a0", *(name for name, _ in prog.assigns)]
    assigns = list(prog.assigns)
    g = "g"
    grads: dict[int, list[E.Expr]] = {k: [] for k in needs}
    for s in reversed(range(len(chain.steps))):
        step = chain.steps[s]
        env = _bind(step, values[s])
        for var, k in step.operands:
            if k in grads:
                grads[k].append(E.mul(E.Var(g), E.substitute(E.diff(step.expr, var), env)))
        dx = E.substitute(E.diff(step.expr, "x"), env)
        if not step.operands:
            dx = E.saturated(dx, env["x"])
        assigns.append((f"g{s}", E.mul(E.Var(g), dx)))
        g = f"g{s}"
    if 0 in grads:
        grads[0].append(E.Var(g))
    stores = []
    for out, k in enumerate(needs):
        total: E.Expr = E.ZERO
        for term in grads[k]:
            total = E.add(total, term)
        stores.append((out, total))
    loads = (*prog.loads, ("g", len(chain.names)))
    assigns = _live(assigns, [e for _, e in stores])
    grad_names = ", ".join(chain.names[k] for k in needs)
    return Program(loads, tuple(assigns), tuple(stores),
                   (f"backward of: {chain.describe()}", f"gradients of: {grad_names}"))  # fmt: skip


def _live(assigns: list[tuple[str, E.Expr]], roots: list[E.Expr]) -> list[tuple[str, E.Expr]]:
    """The assignments the roots depend on (the rest is dropped, for a readable source)."""
    needed = set().union(*(E.variables(r) for r in roots)) if roots else set()
    kept = []
    for name, e in reversed(assigns):
        if name in needed:
            kept.append((name, e))
            needed |= E.variables(e)
    return kept[::-1]


@dataclass(frozen=True)
class Launch:
    grid: int
    block: int
    why: str


@dataclass(frozen=True)
class PointwiseKernel(HashNamed):
    """A program over an iteration: every input read at its address, every output written."""

    title: str
    program: Program
    inputs: tuple[Layout, ...]
    outputs: tuple[Layout, ...]
    iteration: Iteration
    vec: int = 1
    kind: str = "pw"

    # ---- placement

    @property
    def numel(self) -> int:
        return self.iteration.numel

    def tensor(self, k: int) -> int:
        """Iteration slot of input k (outputs come first)."""
        return len(self.outputs) + k

    def in_index(self, k: int) -> E.Index:
        return self.iteration.index(self.tensor(k))

    def out_index(self, k: int) -> E.Index:
        return self.iteration.index(k)

    def vector_inputs(self) -> tuple[int, ...]:
        """Inputs read as aligned vectors (laid out like the iteration) when vec > 1."""
        if self.vec == 1:
            return ()
        used = {k for _, k in self.program.loads}
        return tuple(k for k in sorted(used) if self.iteration.is_linear(self.tensor(k)))

    def scalar(self) -> PointwiseKernel:
        """The same kernel one element a thread (when pointers are not aligned)."""
        return self if self.vec == 1 else PointwiseKernel(
            f"{self.title} (scalar fallback)", self.program, self.inputs, self.outputs,
            self.iteration, 1, self.kind,
        )  # fmt: skip

    def alignment(self) -> int:
        """Bytes the vector-accessed pointers must be aligned to (0: none needed)."""
        if self.vec == 1:
            return 0
        tensors = [self.outputs[k] for k in range(len(self.outputs))]
        tensors += [self.inputs[k] for k in self.vector_inputs()]
        return max(self.vec * ITEM_BYTES[t.dtype] for t in tensors)

    @property
    def index_type(self) -> str:
        n = len(self.outputs) + len(self.inputs)
        big = max([self.numel] + [self.iteration.span(k) for k in range(n)])
        return "int" if big <= INT32_LIMIT else "long long"

    @property
    def launch(self) -> Launch:
        work = -(-self.numel // self.vec)
        block = min(THREADS, max(32, -(-work // 32) * 32))
        grid = -(-work // block)
        why = (f"{work} work items of {self.vec} element(s); block = min({THREADS}, work rounded "
               f"up to a warp) = {block}; grid = ceil(work / block) = {grid}")  # fmt: skip
        return Launch(grid, block, why)

    # ---- rendering

    def _render(self, name: str) -> str:
        for t in (*self.inputs, *self.outputs):
            if t.dtype not in C_TYPES:
                raise ValueError(f"CUDA kernels store float32/float16/bfloat16, not {t.dtype}")
        it, launch, idx = self.iteration, self.launch, self.index_type
        ctype_in = [C_TYPES[t.dtype] for t in self.inputs]
        ctype_out = [C_TYPES[t.dtype] for t in self.outputs]
        lines = [f"// {c}" for c in self.program.comment]
        lines.append(f"// iteration: {it.numel} elements as dims {list(it.sizes)} (output memory "
                     f"order, coalesced); {idx} indices")  # fmt: skip
        for k, t in enumerate(self.inputs):
            lines.append(f"// in{k}: {_describe(t)} strides {list(it.strides[self.tensor(k)])}")
        for k, t in enumerate(self.outputs):
            lines.append(f"// out{k}: {_describe(t)} strides {list(it.strides[k])}")
        lines.append(f"// launch: grid ({launch.grid},) x block ({launch.block},): {launch.why}")
        if self.vec > 1:
            lines.append(f"// vectorized: {self.vec} elements per thread, aligned vector access "
                         f"to the outputs and inputs {list(self.vector_inputs())}")  # fmt: skip
        params = [f"const {c}* __restrict__ in{k}" for k, c in enumerate(ctype_in)]
        params += [f"{c}* __restrict__ out{k}" for k, c in enumerate(ctype_out)]
        lines.append(f'extern "C" __global__ void __launch_bounds__({launch.block}) '
                     f"{name}({', '.join(params)}) {{")  # fmt: skip
        work = -(-self.numel // self.vec)
        lines.append(f"  const {idx} t = ({idx})blockIdx.x * {launch.block} + ({idx})threadIdx.x;")
        lines.append(f"  if (t >= {work}) return;")
        if self.vec == 1:
            lines.append(f"  const {idx} i = t;")
            lines += ["  " + s for s in self._element(ctype_in, ctype_out, vector=False)]
        else:
            v = self.vec
            lines.append(f"  const {idx} base = t * {v};")
            for k in self.vector_inputs():
                c = ctype_in[k]
                lines.append(f"  const ag_vec<{c}, {v}> in{k}_v = "
                             f"*reinterpret_cast<const ag_vec<{c}, {v}>*>(in{k} + base);")  # fmt: skip
            for k, c in enumerate(ctype_out):
                lines.append(f"  ag_vec<{c}, {v}> out{k}_v;")
            lines.append("#pragma unroll")
            lines.append(f"  for (int j = 0; j < {v}; ++j) {{")
            lines.append(f"    const {idx} i = base + j;")
            lines += ["    " + s for s in self._element(ctype_in, ctype_out, vector=True)]
            lines.append("  }")
            for k, c in enumerate(ctype_out):
                lines.append(f"  *reinterpret_cast<ag_vec<{c}, {v}>*>(out{k} + base) = out{k}_v;")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _element(self, ctype_in: list[str], ctype_out: list[str], vector: bool) -> list[str]:
        vec_in = set(self.vector_inputs()) if vector else set()
        out = []
        for var, k in self.program.loads:
            where = f"in{k}_v.v[j]" if k in vec_in else f"in{k}[{E.index_c(self.in_index(k))}]"
            out.append(f"const float {var} = ag_f({where});")
        for var, e in self.program.assigns:
            out.append(f"const float {var} = {E.to_c(e)};")
        for k, e in self.program.stores:
            value = f"ag_to<{ctype_out[k]}>({E.to_c(e)})"
            if vector:
                out.append(f"out{k}_v.v[j] = {value};")
            else:
                out.append(f"out{k}[{E.index_c(self.out_index(k))}] = {value};")
        return out


def _describe(t: Layout) -> str:
    return f"{t.dtype} {list(t.shape)}"


def make_kernel(title: str, program: Program, inputs: Sequence[Layout],
                outputs: Sequence[Layout], *, order: Sequence[int] | None = None,
                vectorize: bool = True, kind: str = "pw") -> PointwiseKernel:  # fmt: skip
    """Place a program on the outputs' shape; vectorized when every output is laid out like
    the iteration and the element count is a multiple of VEC (the caller checks alignment)."""
    it = iterate(outputs[0].shape, outputs, inputs, order)
    vec = 1
    if vectorize and it.numel % VEC == 0 and all(it.is_linear(k) for k in range(len(outputs))):
        vec = VEC
    return PointwiseKernel(title, program, tuple(inputs), tuple(outputs), it, vec, kind)


# ---- host evaluation ---------------------------------------------------------------------------


def _flat(t: torch.Tensor, span: int) -> torch.Tensor:
    """The storage a kernel sees through t's pointer: `span` elements from t's first element."""
    return torch.as_strided(t, (span,), (1,), t.storage_offset())


def run_host(kernel: PointwiseKernel, inputs: Sequence[torch.Tensor],
             outputs: Sequence[torch.Tensor]) -> None:  # fmt: skip
    """Execute the kernel's program with its index expressions in torch: what each CUDA
    thread does, for all threads at once. Arithmetic in float32 (float64 for float64 storage)."""
    for t, layout in zip([*inputs, *outputs], [*kernel.inputs, *kernel.outputs], strict=True):
        if tuple(t.shape) != layout.shape or tuple(t.stride()) != layout.strides:
            raise ValueError(f"tensor {list(t.shape)}/{list(t.stride())} is not the kernel's "
                             f"{list(layout.shape)}/{list(layout.strides)}")  # fmt: skip
    compute = torch.float64 if any(t.dtype == torch.float64 for t in inputs) else torch.float32
    device = outputs[0].device
    i = torch.arange(kernel.numel, device=device)
    env: dict[str, object] = {}
    for var, k in kernel.program.loads:
        flat = _flat(inputs[k], kernel.iteration.span(kernel.tensor(k)))
        index = kernel.in_index(k)
        # an address that is i itself reads the first numel elements in order (no gather)
        env[var] = (flat if index == E.I else flat[E.index_eval(index, i)]).to(compute)
    for var, e in kernel.program.assigns:
        env[var] = _as_tensor(E.evaluate(e, env), i, compute)
    for k, e in kernel.program.stores:
        value = _as_tensor(E.evaluate(e, env), i, compute).to(TORCH_DTYPES[kernel.outputs[k].dtype])
        flat = _flat(outputs[k], kernel.iteration.span(k))
        index = kernel.out_index(k)
        if index == E.I:
            flat.copy_(value)
        else:
            flat[E.index_eval(index, i)] = value


def _as_tensor(v: object, i: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.expand(i.shape) if v.dim() == 0 else v
    return torch.full(i.shape, float(v), dtype=dtype, device=i.device)  # type: ignore[arg-type]
