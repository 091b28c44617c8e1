"""The C preamble every generated module starts with: storage types, fp32 conversions, aligned
vectors and block reductions. No CUDA headers are included, so NVRTC compiles a module without
a CUDA toolkit's include directory (fp16/bf16 conversions are single PTX instructions; bf16
rounding needs sm_80 or newer, the oldest target)."""

from __future__ import annotations

# storage dtype name -> C type; all arithmetic is in float
C_TYPES = {"float32": "float", "float16": "ag_half", "bfloat16": "ag_bf16"}
ITEM_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}

PREAMBLE = r"""// archgraph generated CUDA: storage in fp32/fp16/bf16, arithmetic in fp32.
struct __align__(2) ag_half { unsigned short x; };
struct __align__(2) ag_bf16 { unsigned short x; };
__device__ __forceinline__ float ag_f(float v) { return v; }
__device__ __forceinline__ float ag_f(ag_half h) {
  float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.x)); return f;
}
__device__ __forceinline__ float ag_f(ag_bf16 h) { return __uint_as_float(((unsigned int)h.x) << 16); }
template <typename T> __device__ __forceinline__ T ag_to(float f);
template <> __device__ __forceinline__ float ag_to<float>(float f) { return f; }
template <> __device__ __forceinline__ ag_half ag_to<ag_half>(float f) {
  ag_half h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.x) : "f"(f)); return h;
}
template <> __device__ __forceinline__ ag_bf16 ag_to<ag_bf16>(float f) {
  ag_bf16 h; asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h.x) : "f"(f)); return h;
}
// A derivative formula's value, or 0 where it overflowed at a finite input (see expr.saturated).
__device__ __forceinline__ float ag_saturated(float d, float x) {
  const float inf = __int_as_float(0x7f800000);
  return (fabsf(d) < inf || !(fabsf(x) < inf)) ? d : 0.0f;
}
template <typename T, int N> struct __align__(sizeof(T) * N) ag_vec { T v[N]; };
__device__ __forceinline__ float ag_warp_reduce(float v, bool max_) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = max_ ? fmaxf(v, w) : v + w;
  }
  return v;
}
// Sum (or max) over a block of THREADS threads (a multiple of 32); every thread gets the result.
template <int THREADS> __device__ __forceinline__ float ag_block_reduce(float v, bool max_) {
  v = ag_warp_reduce(v, max_);
  if (THREADS <= 32) return v;
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // the previous reduction has read part[]
  if (lane == 0) part[warp] = v;
  __syncthreads();
  v = lane < THREADS / 32 ? part[lane] : (max_ ? __int_as_float(0xff800000) : 0.0f);
  return ag_warp_reduce(v, max_);
}
"""
