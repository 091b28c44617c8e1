"""Row kernels: softmax and layer normalization over the last dim, forward and backward.

Eager PyTorch reads a row several times in separate kernels (max, exp-sum, normalize); these
read it within one block, one block per row, with the row's reductions in registers and shared
memory (`ag_block_reduce`). Rows are contiguous (the runtime makes them so). Layer norm's
forward also writes each row's mean and 1/std (float32) for the backward, which returns the
input's gradient; the weight and bias gradients are column sums the autograd Function takes.

The same `RowKernel` renders the C source and runs on the host (`run_host`), with the same
two-pass formulas in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from archgraph.codegen.kernels.cuda.expr import c_float
from archgraph.codegen.kernels.cuda.index import TORCH_DTYPES
from archgraph.codegen.kernels.cuda.naming import HashNamed
from archgraph.codegen.kernels.cuda.pointwise import INT32_LIMIT, Launch
from archgraph.codegen.kernels.cuda.preamble import C_TYPES

KINDS = ("softmax_fwd", "softmax_bwd", "layernorm_fwd", "layernorm_bwd")


def block_for(length: int) -> int:
    """Threads per row: a power of two giving each thread about 4 elements, 32 to 1024."""
    want = max(1, -(-length // 4))
    block = 32
    while block < want and block < 1024:
        block *= 2
    return block


@dataclass(frozen=True)
class RowKernel(HashNamed):
    kind: str
    rows: int
    length: int
    dtype: str = "float32"
    param_dtype: str = "float32"
    eps: float = 1e-5
    weight: bool = False
    bias: bool = False
    title: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown row kernel {self.kind!r}")

    @property
    def launch(self) -> Launch:
        block = block_for(self.length)
        why = (f"one block per row ({self.rows} rows); block = power of two near length / 4 = "
               f"{block} (32..1024), {-(-self.length // block)} element(s) per thread")  # fmt: skip
        return Launch(self.rows, block, why)

    @property
    def index_type(self) -> str:
        return "int" if self.rows * self.length <= INT32_LIMIT else "long long"

    @property
    def args(self) -> tuple[str, ...]:
        """Kernel arguments in order."""
        if self.kind == "softmax_fwd":
            return ("x", "y")
        if self.kind == "softmax_bwd":
            return ("y", "g", "gx")
        params = (("weight",) if self.weight else ()) + (("bias",) if self.bias else ())
        if self.kind == "layernorm_fwd":
            return ("x", *params, "y", "mean", "rstd")
        return ("x", "g", *(("weight",) if self.weight else ()), "mean", "rstd", "gx")

    def _ctype(self, arg: str) -> str:
        if arg in ("mean", "rstd"):
            return "float"
        if arg in ("weight", "bias"):
            return C_TYPES[self.param_dtype]
        return C_TYPES[self.dtype]

    def _render(self, name: str) -> str:
        launch, idx, n = self.launch, self.index_type, self.length
        outs = {"y", "gx", "mean", "rstd"}
        params = [
            f"{self._ctype(a)}* __restrict__ {a}" if a in outs
            else f"const {self._ctype(a)}* __restrict__ {a}"
            for a in self.args
        ]  # fmt: skip
        loop = f"for (int j = threadIdx.x; j < {n}; j += {launch.block})"
        red = f"ag_block_reduce<{launch.block}>"
        store = f"ag_to<{C_TYPES[self.dtype]}>"
        lines = [
            f"// {self.kind}: {self.rows} rows of {n} ({self.dtype}), row-contiguous; {idx} indices",
            f"// launch: grid ({launch.grid},) x block ({launch.block},): {launch.why}",
            f'extern "C" __global__ void __launch_bounds__({launch.block}) '
            f"{name}({', '.join(params)}) {{",
            f"  const {idx} row = ({idx})blockIdx.x * {n};",
        ]
        if self.kind == "softmax_fwd":
            lines += [
                "  float m = __int_as_float(0xff800000);",
                f"  {loop} m = fmaxf(m, ag_f(x[row + j]));",
                f"  m = {red}(m, true);",
                "  float s = 0.0f;",
                f"  {loop} s += expf(ag_f(x[row + j]) - m);",
                f"  const float inv = 1.0f / {red}(s, false);",
                f"  {loop} y[row + j] = {store}(expf(ag_f(x[row + j]) - m) * inv);",
            ]
        elif self.kind == "softmax_bwd":
            lines += [
                "  float d = 0.0f;",
                f"  {loop} d += ag_f(g[row + j]) * ag_f(y[row + j]);",
                f"  d = {red}(d, false);",
                f"  {loop} gx[row + j] = {store}(ag_f(y[row + j]) * (ag_f(g[row + j]) - d));",
            ]
        elif self.kind == "layernorm_fwd":
            w = " * ag_f(weight[j])" if self.weight else ""
            b = " + ag_f(bias[j])" if self.bias else ""
            lines += [
                "  float s = 0.0f;",
                f"  {loop} s += ag_f(x[row + j]);",
                f"  const float mu = {red}(s, false) * {c_float(1.0 / n)};",
                "  float q = 0.0f;",
                f"  {loop} {{ const float c = ag_f(x[row + j]) - mu; q += c * c; }}",
                f"  const float r = rsqrtf({red}(q, false) * {c_float(1.0 / n)} + {c_float(self.eps)});",
                "  if (threadIdx.x == 0) { mean[blockIdx.x] = mu; rstd[blockIdx.x] = r; }",
                f"  {loop} y[row + j] = {store}((ag_f(x[row + j]) - mu) * r{w}{b});",
            ]
        else:
            w = " * ag_f(weight[j])" if self.weight else ""
            lines += [
                "  const float mu = mean[blockIdx.x], r = rstd[blockIdx.x];",
                "  float a = 0.0f, b = 0.0f;",
                f"  {loop} {{",
                f"    const float h = ag_f(g[row + j]){w};",
                "    a += h;",
                "    b += h * (ag_f(x[row + j]) - mu) * r;",
                "  }",
                f"  a = {red}(a, false) * {c_float(1.0 / n)};",
                f"  b = {red}(b, false) * {c_float(1.0 / n)};",
                f"  {loop} {{",
                "    const float xh = (ag_f(x[row + j]) - mu) * r;",
                f"    gx[row + j] = {store}(r * (ag_f(g[row + j]){w} - a - xh * b));",
                "  }",
            ]
        lines.append("}")
        return "\n".join(lines) + "\n"


def run_host(kernel: RowKernel, tensors: dict[str, torch.Tensor]) -> None:
    """The kernel's computation in torch (float32, or float64 for float64 storage), writing
    its outputs in `tensors` (keyed by kernel.args)."""
    x0 = tensors["x" if "x" in tensors else "y"]
    compute = torch.float64 if x0.dtype == torch.float64 else torch.float32
    shape = (kernel.rows, kernel.length)

    def rows(name: str) -> torch.Tensor:
        return tensors[name].reshape(shape).to(compute)

    def param(name: str) -> torch.Tensor | float:
        return tensors[name].to(compute) if name in tensors else 1.0

    def put(name: str, value: torch.Tensor) -> None:
        out = tensors[name]
        out.copy_(value.reshape(out.shape).to(out.dtype))

    if kernel.kind == "softmax_fwd":
        x = rows("x")
        e = torch.exp(x - x.amax(dim=1, keepdim=True))
        put("y", e * (1.0 / e.sum(dim=1, keepdim=True)))
    elif kernel.kind == "softmax_bwd":
        y, g = rows("y"), rows("g")
        put("gx", y * (g - (g * y).sum(dim=1, keepdim=True)))
    elif kernel.kind == "layernorm_fwd":
        x = rows("x")
        mu = x.sum(dim=1, keepdim=True) / kernel.length
        r = torch.rsqrt(((x - mu) ** 2).sum(dim=1, keepdim=True) / kernel.length + kernel.eps)
        y = (x - mu) * r * param("weight")
        if kernel.bias:
            y = y + param("bias")
        put("y", y)
        put("mean", mu)
        put("rstd", r)
    else:
        x, g = rows("x"), rows("g")
        mu, r = (
            tensors["mean"].reshape(-1, 1).to(compute),
            tensors["rstd"].reshape(-1, 1).to(compute),
        )
        h = g * param("weight")
        xh = (x - mu) * r
        a = h.sum(dim=1, keepdim=True) / kernel.length
        b = (h * xh).sum(dim=1, keepdim=True) / kernel.length
        put("gx", r * (h - a - xh * b))


def row_dtype(t: torch.Tensor) -> str:
    for name, dt in TORCH_DTYPES.items():
        if dt == t.dtype:
            return name
    raise ValueError(f"no row kernel for {t.dtype}")
