// Kernels of the CUDA backend. Shapes and conventions: exec/model/backend.h; launch
// arithmetic: launch_config.h (tested on the CPU). All reductions have a fixed order that
// depends on the shape only; no float atomics except in the optional non-deterministic
// embedding backward.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>

#include <cmath>

#include "exec/cuda/kernel_math.h"
#include "exec/cuda/kernels.h"
#include "exec/cuda/launch_config.h"

namespace paci {
namespace cuda {
namespace {

using bf16 = __nv_bfloat16;

// ---- launch helpers ----
bool to_dim3(const LaunchConfig& lc, dim3* grid, dim3* block) {
  if (!launch_error(lc).empty()) return false;
  *grid = dim3(static_cast<unsigned>(lc.grid.x), static_cast<unsigned>(lc.grid.y),
               static_cast<unsigned>(lc.grid.z));
  *block = dim3(static_cast<unsigned>(lc.block.x), static_cast<unsigned>(lc.block.y),
                static_cast<unsigned>(lc.block.z));
  return true;
}

#define PACI_LAUNCH(lc, kernel, stream, ...)                                  \
  do {                                                                        \
    dim3 grid_, block_;                                                       \
    if (!to_dim3((lc), &grid_, &block_)) return cudaErrorInvalidConfiguration; \
    kernel<<<grid_, block_, 0, (stream)>>>(__VA_ARGS__);                      \
  } while (0)

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ size_t global_tid() {
  return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ size_t grid_stride() {
  return static_cast<size_t>(gridDim.x) * blockDim.x;
}

template <typename T>
__device__ __forceinline__ void store(T* p, size_t i, float v);
template <>
__device__ __forceinline__ void store<float>(float* p, size_t i, float v) {
  p[i] = v;
}
template <>
__device__ __forceinline__ void store<bf16>(bf16* p, size_t i, float v) {
  p[i] = __float2bfloat16_rn(v);
}
__device__ __forceinline__ float load(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float load(const bf16* p, size_t i) { return __bfloat162float(p[i]); }

// ---- casts, bias ----
// VEC: 16-byte loads, two bf16x2 stores per thread-step (src 16-, dst 8-byte aligned).
template <bool VEC>
__global__ void cast_bf16_kernel(bf16* dst, const float* src, size_t n) {
  size_t start = 0;
  if (VEC) {
    const size_t n4 = n / 4;
    __nv_bfloat162* d2 = reinterpret_cast<__nv_bfloat162*>(dst);
    for (size_t i = global_tid(); i < n4; i += grid_stride()) {
      const float4 v = reinterpret_cast<const float4*>(src)[i];
      d2[2 * i] = __floats2bfloat162_rn(v.x, v.y);
      d2[2 * i + 1] = __floats2bfloat162_rn(v.z, v.w);
    }
    start = n4 * 4;
  }
  for (size_t i = start + global_tid(); i < n; i += grid_stride()) {
    dst[i] = __float2bfloat16_rn(src[i]);
  }
}

__global__ void fill_bias_kernel(float* out, const float* bias, int OC) {
  // grid.x = rows, grid.y = column tiles
  const int o = blockIdx.y * blockDim.x + threadIdx.x;
  if (o < OC) out[static_cast<size_t>(blockIdx.x) * OC + o] = bias[o];
}

// ---- column reductions ----
// MODE 0: one output, value x[n,c]. MODE 1: LayerNorm params: out0 += dout·x̂, out1 += dout.
template <int MODE>
__global__ void column_reduce_pass1(float* partial0, float* partial1, const float* x,
                                    const float* in, const float* mean, const float* rstd,
                                    int64_t N, int C, int64_t rows_per_chunk) {
  __shared__ float s0[kColReduceRowThreads][kColReduceTileCols];
  __shared__ float s1[kColReduceRowThreads][kColReduceTileCols];
  const int c = blockIdx.x * kColReduceTileCols + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t r1 = min(N, r0 + rows_per_chunk);
  float a0 = 0.f, a1 = 0.f;
  if (c < C) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kColReduceRowThreads) {
      const size_t idx = static_cast<size_t>(r) * C + c;
      if (MODE == 0) {
        a0 += x[idx];
      } else {
        const float d = x[idx];
        a0 += d * ((in[idx] - mean[r]) * rstd[r]);
        a1 += d;
      }
    }
  }
  s0[threadIdx.y][threadIdx.x] = a0;
  s1[threadIdx.y][threadIdx.x] = a1;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float t0 = 0.f, t1 = 0.f;
    for (int k = 0; k < kColReduceRowThreads; ++k) {
      t0 += s0[k][threadIdx.x];
      t1 += s1[k][threadIdx.x];
    }
    partial0[static_cast<size_t>(blockIdx.y) * C + c] = t0;
    if (MODE == 1) partial1[static_cast<size_t>(blockIdx.y) * C + c] = t1;
  }
}

__global__ void column_reduce_pass2(float* out0, float* out1, const float* partial0,
                                    const float* partial1, int64_t chunks, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float t0 = 0.f, t1 = 0.f;
  for (int64_t k = 0; k < chunks; ++k) {
    t0 += partial0[static_cast<size_t>(k) * C + c];
    if (out1) t1 += partial1[static_cast<size_t>(k) * C + c];
  }
  out0[c] += t0;
  if (out1) out1[c] += t1;
}

// ---- LayerNorm (one warp per row) ----
constexpr float kLnEps = 1e-5f;

__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* in,
                                         const float* w, const float* b, int64_t N, int C) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* x = in + static_cast<size_t>(row) * C;
  float s = 0.f;
  for (int c = lane; c < C; c += 32) s += x[c];
  const float m = warp_sum(s) / C;
  float v = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float d = x[c] - m;
    v += d * d;
  }
  const float r = 1.0f / sqrtf(warp_sum(v) / C + kLnEps);
  float* y = out + static_cast<size_t>(row) * C;
  for (int c = lane; c < C; c += 32) y[c] = (x[c] - m) * r * w[c] + b[c];
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = r;
  }
}

__global__ void layernorm_backward_input_kernel(float* din, const float* dout, const float* in,
                                                const float* w, const float* mean,
                                                const float* rstd, int64_t N, int C) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const size_t off = static_cast<size_t>(row) * C;
  const float m = mean[row], r = rstd[row];
  float sg = 0.f, sgx = 0.f;
  for (int c = lane; c < C; c += 32) {
    const float g = dout[off + c] * w[c];
    sg += g;
    sgx += g * ((in[off + c] - m) * r);
  }
  const float mg = warp_sum(sg) / C, mgx = warp_sum(sgx) / C;
  for (int c = lane; c < C; c += 32) {
    const float xhat = (in[off + c] - m) * r;
    din[off + c] += r * (dout[off + c] * w[c] - mg - xhat * mgx);
  }
}

// ---- elementwise ----
__device__ __forceinline__ float gelu_f(float x) { return gelu(x); }

// VEC: float4 body over n/4 (all pointers 16-byte aligned), scalar tail.
template <bool VEC>
__global__ void residual_kernel(float* out, const float* a, const float* b, size_t n) {
  size_t start = 0;
  if (VEC) {
    const size_t n4 = n / 4;
    for (size_t i = global_tid(); i < n4; i += grid_stride()) {
      const float4 x = reinterpret_cast<const float4*>(a)[i];
      const float4 y = reinterpret_cast<const float4*>(b)[i];
      reinterpret_cast<float4*>(out)[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
    }
    start = n4 * 4;
  }
  for (size_t i = start + global_tid(); i < n; i += grid_stride()) out[i] = a[i] + b[i];
}

template <bool VEC>
__global__ void gelu_forward_kernel(float* out, const float* in, size_t n) {
  size_t start = 0;
  if (VEC) {
    const size_t n4 = n / 4;
    for (size_t i = global_tid(); i < n4; i += grid_stride()) {
      const float4 x = reinterpret_cast<const float4*>(in)[i];
      reinterpret_cast<float4*>(out)[i] =
          make_float4(gelu_f(x.x), gelu_f(x.y), gelu_f(x.z), gelu_f(x.w));
    }
    start = n4 * 4;
  }
  for (size_t i = start + global_tid(); i < n; i += grid_stride()) out[i] = gelu_f(in[i]);
}

template <bool VEC>
__global__ void gelu_backward_kernel(float* din, const float* in, const float* dout, size_t n) {
  size_t start = 0;
  if (VEC) {
    const size_t n4 = n / 4;
    for (size_t i = global_tid(); i < n4; i += grid_stride()) {
      const float4 x = reinterpret_cast<const float4*>(in)[i];
      const float4 d = reinterpret_cast<const float4*>(dout)[i];
      float4 o = reinterpret_cast<float4*>(din)[i];
      o.x += gelu_grad(x.x) * d.x;
      o.y += gelu_grad(x.y) * d.y;
      o.z += gelu_grad(x.z) * d.z;
      o.w += gelu_grad(x.w) * d.w;
      reinterpret_cast<float4*>(din)[i] = o;
    }
    start = n4 * 4;
  }
  for (size_t i = start + global_tid(); i < n; i += grid_stride()) {
    din[i] += gelu_grad(in[i]) * dout[i];
  }
}

__global__ void adamw_kernel(float* params, float* grads, float* m, float* v, size_t n,
                             float lr, float b1, float b2, float c1, float c2, float eps,
                             float wd) {
  for (size_t i = global_tid(); i < n; i += grid_stride()) {
    float p = params[i], mi = m[i], vi = v[i];
    adamw_step(p, grads[i], mi, vi, lr, b1, b2, c1, c2, eps, wd);
    grads[i] = 0.f;  // consumed (backend.h)
    m[i] = mi;
    v[i] = vi;
    params[i] = p;
  }
}

// ---- embedding ----
__global__ void embedding_forward_kernel(float* out, const int* tokens, const float* wte,
                                         const float* wpe, int T, int C, int V, int* err) {
  // grid.x = rows (b·T + t), grid.y = column tiles
  const int64_t row = blockIdx.x;
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int tok = tokens[row];
  const int t = static_cast<int>(row % T);
  float* o = out + static_cast<size_t>(row) * C;
  if (tok < 0 || tok >= V) {
    if (c == 0) atomicCAS(err + kErrToken, 0, static_cast<int>(row) + 1);
    o[c] = __int_as_float(0x7fc00000);  // NaN
    return;
  }
  o[c] = wte[static_cast<size_t>(tok) * C + c] + wpe[static_cast<size_t>(t) * C + c];
}

__global__ void iota_kernel(int* v, int n) {
  for (size_t i = global_tid(); i < static_cast<size_t>(n); i += grid_stride()) {
    v[i] = static_cast<int>(i);
  }
}

// One block-row per sorted position; only the first position of each run of equal tokens
// works: it adds the run's rows in ascending (b, t) order, as the CPU backend does.
__global__ void embedding_dwte_sorted_kernel(float* dwte, const float* dout,
                                             const unsigned* keys, const int* rows, int N, int C,
                                             int V, const int* err) {
  const int p = blockIdx.x;
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C || err[kErrToken] != 0) return;
  const unsigned tok = keys[p];
  if (tok >= static_cast<unsigned>(V) || !is_run_start(keys, p)) return;
  float* e = dwte + static_cast<size_t>(tok) * C + c;
  *e = sum_run(*e, keys, rows, dout, p, N, C, c);
}

__global__ void embedding_dwte_atomic_kernel(float* dwte, const float* dout, const int* tokens,
                                             int C, int V, const int* err) {
  const int64_t row = blockIdx.x;
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C || err[kErrToken] != 0) return;
  const int tok = tokens[row];
  if (tok < 0 || tok >= V) return;
  atomicAdd(dwte + static_cast<size_t>(tok) * C + c, dout[static_cast<size_t>(row) * C + c]);
}

// dwpe[t, c] += Σ_b dout[b, t, c], b ascending.
__global__ void embedding_dwpe_kernel(float* dwpe, const float* dout, int B, int T, int C,
                                      const int* err) {
  if (err[kErrToken] != 0) return;
  const size_t n = static_cast<size_t>(T) * C;
  for (size_t i = global_tid(); i < n; i += grid_stride()) {
    float acc = dwpe[i];
    for (int b = 0; b < B; ++b) acc += dout[static_cast<size_t>(b) * n + i];
    dwpe[i] = acc;
  }
}

// ---- softmax + cross-entropy (one block per row) ----
__global__ void softmax_xent_forward_kernel(float* losses, float* probs, const float* logits,
                                            const int* targets, int V, int* err) {
  extern __shared__ float red[];  // [warps][2]
  __shared__ float zy_s, M_s, S_s;
  const int64_t row = blockIdx.x;
  const float* z = logits + static_cast<size_t>(row) * V;
  float* p = probs + static_cast<size_t>(row) * V;
  const int y = targets[row];
  const bool bad = y < 0 || y >= V;
  if (threadIdx.x == 0) zy_s = bad ? 0.f : z[y];  // read before probs (may alias) is written
  float m = -INFINITY, s = 0.f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) online_update(m, s, z[i]);
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
    const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
    online_merge(m, s, m2, s2);
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) {
    red[2 * warp] = m;
    red[2 * warp + 1] = s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float M = red[0], S = red[1];
    for (int k = 1; k < warps; ++k) online_merge(M, S, red[2 * k], red[2 * k + 1]);
    M_s = M;
    S_s = S;
    if (bad) {
      atomicCAS(err + kErrTarget, 0, static_cast<int>(row) + 1);
      losses[row] = __int_as_float(0x7fc00000);
    } else {
      losses[row] = logf(S) + M - zy_s;
    }
  }
  __syncthreads();
  const float M = M_s, inv = 1.f / S_s;
  for (int i = threadIdx.x; i < V; i += blockDim.x) p[i] = expf(z[i] - M) * inv;
}

__global__ void softmax_xent_backward_kernel(float* dlogits, const float* probs,
                                             const int* targets, float dloss, int V) {
  const int64_t row = blockIdx.x;
  const int i = blockIdx.y * blockDim.x + threadIdx.x;
  if (i >= V) return;
  const size_t idx = static_cast<size_t>(row) * V + i;
  dlogits[idx] = dloss * (probs[idx] - (i == targets[row] ? 1.f : 0.f));
}

// ---- attention helpers ----
// Index type I: 32-bit when the tensor has < 2^32 elements (64-bit division is slow on GPUs).
template <typename T, typename I>
__global__ void to_heads_kernel(T* dst, const float* src, int64_t src_stride, int T_, int C,
                                int NH, I n) {
  const I hs = static_cast<I>(C / NH), TT = static_cast<I>(T_), nh = static_cast<I>(NH);
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I idx = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += stride) {
    const HeadIndex<I> x = head_index(idx, hs, TT, nh);
    store(dst, idx, src[token_major_offset(x, hs, TT, src_stride)]);
  }
}

template <bool ACC, typename I>
__global__ void from_heads_kernel(float* dst, int64_t dst_stride, const float* src, int T_, int C,
                                  int NH, I n) {
  const I hs = static_cast<I>(C / NH), TT = static_cast<I>(T_), nh = static_cast<I>(NH);
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I idx = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; idx < n; idx += stride) {
    float* d = dst + token_major_offset(head_index(idx, hs, TT, nh), hs, TT, dst_stride);
    if (ACC) {
      *d += src[idx];
    } else {
      *d = src[idx];
    }
  }
}

template <typename PT>
__global__ void causal_softmax_kernel(PT* P, const float* S, int64_t rows, int T_) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = static_cast<int>(row % T_);
  const float* s = S + static_cast<size_t>(row) * T_;
  PT* p = P + static_cast<size_t>(row) * T_;
  float mx = -INFINITY;
  for (int j = lane; j <= t; j += 32) mx = fmaxf(mx, s[j]);
  mx = warp_max(mx);
  float sum = 0.f;
  for (int j = lane; j <= t; j += 32) sum += expf(s[j] - mx);
  const float inv = 1.f / warp_sum(sum);
  for (int j = lane; j < T_; j += 32) store(p, j, j <= t ? expf(s[j] - mx) * inv : 0.f);
}

template <typename PT>
__global__ void causal_softmax_backward_kernel(PT* dS, const PT* P, const float* dP, int64_t rows,
                                               int T_, float scale) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int t = static_cast<int>(row % T_);
  const size_t off = static_cast<size_t>(row) * T_;
  float dot = 0.f;
  for (int j = lane; j <= t; j += 32) dot += load(P, off + j) * dP[off + j];
  dot = warp_sum(dot);
  for (int j = lane; j < T_; j += 32) {
    const float v = j <= t ? load(P, off + j) * (dP[off + j] - dot) * scale : 0.f;
    store(dS, off + j, v);
  }
}

size_t align256(size_t b) { return (b + 255) / 256 * 256; }

}  // namespace

// ================= launchers =================

cudaError_t launch_cast_to_bf16(void* dst, const float* src, size_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  if (aligned16(src) && (reinterpret_cast<uintptr_t>(dst) & 7u) == 0) {
    PACI_LAUNCH(elementwise_config(n, 4), cast_bf16_kernel<true>, s, static_cast<bf16*>(dst), src,
                n);
  } else {
    PACI_LAUNCH(elementwise_config(n), cast_bf16_kernel<false>, s, static_cast<bf16*>(dst), src, n);
  }
  return cudaGetLastError();
}

cudaError_t launch_fill_bias(float* out, const float* bias, int64_t N, int OC, cudaStream_t s) {
  if (N == 0 || OC == 0) return cudaSuccess;
  PACI_LAUNCH(rows_by_col_tiles_config(N, OC), fill_bias_kernel, s, out, bias, OC);
  return cudaGetLastError();
}

cudaError_t launch_column_sum(float* out, const float* x, int64_t N, int C, float* partial,
                              cudaStream_t s) {
  if (C == 0 || N == 0) return cudaSuccess;
  const ColumnReducePlan p = column_reduce_plan(N, C);
  PACI_LAUNCH(p.pass1, column_reduce_pass1<0>, s, partial, nullptr, x, nullptr, nullptr, nullptr,
              N, C, p.rows_per_chunk);
  PACI_LAUNCH(p.pass2, column_reduce_pass2, s, out, nullptr, partial, nullptr, p.chunks, C);
  return cudaGetLastError();
}

cudaError_t launch_layernorm_forward(float* out, float* mean, float* rstd, const float* in,
                                     const float* w, const float* b, int64_t N, int C,
                                     cudaStream_t s) {
  if (N == 0) return cudaSuccess;
  PACI_LAUNCH(warp_per_row_config(N), layernorm_forward_kernel, s, out, mean, rstd, in, w, b, N,
              C);
  return cudaGetLastError();
}

cudaError_t launch_layernorm_backward_input(float* din, const float* dout, const float* in,
                                            const float* w, const float* mean, const float* rstd,
                                            int64_t N, int C, cudaStream_t s) {
  if (N == 0) return cudaSuccess;
  PACI_LAUNCH(warp_per_row_config(N), layernorm_backward_input_kernel, s, din, dout, in, w, mean,
              rstd, N, C);
  return cudaGetLastError();
}

cudaError_t launch_layernorm_backward_params(float* dw, float* db, const float* dout,
                                             const float* in, const float* mean,
                                             const float* rstd, int64_t N, int C, float* partial,
                                             cudaStream_t s) {
  if (C == 0 || N == 0) return cudaSuccess;
  const ColumnReducePlan p = column_reduce_plan(N, C);
  float* p1 = partial + p.partial_elems();
  PACI_LAUNCH(p.pass1, column_reduce_pass1<1>, s, partial, p1, dout, in, mean, rstd, N, C,
              p.rows_per_chunk);
  PACI_LAUNCH(p.pass2, column_reduce_pass2, s, dw, db, partial, p1, p.chunks, C);
  return cudaGetLastError();
}

cudaError_t launch_gelu_forward(float* out, const float* in, size_t n, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  if (aligned16(out) && aligned16(in)) {
    PACI_LAUNCH(elementwise_config(n, 4), gelu_forward_kernel<true>, s, out, in, n);
  } else {
    PACI_LAUNCH(elementwise_config(n), gelu_forward_kernel<false>, s, out, in, n);
  }
  return cudaGetLastError();
}

cudaError_t launch_gelu_backward(float* din, const float* in, const float* dout, size_t n,
                                 cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  if (aligned16(din) && aligned16(in) && aligned16(dout)) {
    PACI_LAUNCH(elementwise_config(n, 4), gelu_backward_kernel<true>, s, din, in, dout, n);
  } else {
    PACI_LAUNCH(elementwise_config(n), gelu_backward_kernel<false>, s, din, in, dout, n);
  }
  return cudaGetLastError();
}

cudaError_t launch_residual_forward(float* out, const float* a, const float* b, size_t n,
                                    cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  if (aligned16(out) && aligned16(a) && aligned16(b)) {
    PACI_LAUNCH(elementwise_config(n, 4), residual_kernel<true>, s, out, a, b, n);
  } else {
    PACI_LAUNCH(elementwise_config(n), residual_kernel<false>, s, out, a, b, n);
  }
  return cudaGetLastError();
}

cudaError_t launch_accumulate(float* dst, const float* src, size_t n, cudaStream_t s) {
  return launch_residual_forward(dst, dst, src, n, s);
}

cudaError_t launch_embedding_forward(float* out, const int* tokens, const float* wte,
                                     const float* wpe, int B, int T, int C, int V, int* err,
                                     cudaStream_t s) {
  const int64_t N = static_cast<int64_t>(B) * T;
  if (N == 0 || C == 0) return cudaSuccess;
  PACI_LAUNCH(rows_by_col_tiles_config(N, C), embedding_forward_kernel, s, out, tokens, wte, wpe,
              T, C, V, err);
  return cudaGetLastError();
}

size_t embedding_backward_scratch_bytes(int N) {
  size_t temp = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, temp, static_cast<const unsigned*>(nullptr),
                                  static_cast<unsigned*>(nullptr), static_cast<const int*>(nullptr),
                                  static_cast<int*>(nullptr), N);
  return 3 * align256(static_cast<size_t>(N) * sizeof(int)) + align256(temp);
}

cudaError_t launch_embedding_backward(float* dwte, float* dwpe, const float* dout,
                                      const int* tokens, int B, int T, int C, int V,
                                      bool sorted, void* scratch, size_t scratch_bytes,
                                      const int* err, cudaStream_t s) {
  const int N = B * T;
  if (N == 0 || C == 0) return cudaSuccess;
  if (sorted) {
    const size_t ib = align256(static_cast<size_t>(N) * sizeof(int));
    char* base = static_cast<char*>(scratch);
    unsigned* keys_out = reinterpret_cast<unsigned*>(base);
    int* rows_in = reinterpret_cast<int*>(base + ib);
    int* rows_out = reinterpret_cast<int*>(base + 2 * ib);
    void* temp = base + 3 * ib;
    if (scratch_bytes < 3 * ib) return cudaErrorInvalidValue;
    size_t temp_bytes = scratch_bytes - 3 * ib;
    PACI_LAUNCH(elementwise_config(N), iota_kernel, s, rows_in, N);
    cudaError_t e = cub::DeviceRadixSort::SortPairs(
        temp, temp_bytes, reinterpret_cast<const unsigned*>(tokens), keys_out, rows_in, rows_out,
        N, 0, sort_key_bits(V), s);
    if (e != cudaSuccess) return e;
    PACI_LAUNCH(rows_by_col_tiles_config(N, C), embedding_dwte_sorted_kernel, s, dwte, dout,
                keys_out, rows_out, N, C, V, err);
  } else {
    PACI_LAUNCH(rows_by_col_tiles_config(N, C), embedding_dwte_atomic_kernel, s, dwte, dout,
                tokens, C, V, err);
  }
  PACI_LAUNCH(elementwise_config(static_cast<size_t>(T) * C), embedding_dwpe_kernel, s, dwpe, dout,
              B, T, C, err);
  return cudaGetLastError();
}

cudaError_t launch_softmax_xent_forward(float* losses, float* probs, const float* logits,
                                        const int* targets, int N, int V, int* err,
                                        cudaStream_t s) {
  if (N == 0) return cudaSuccess;
  const LaunchConfig lc = block_per_row_config(N, V);
  dim3 grid, block;
  if (!to_dim3(lc, &grid, &block)) return cudaErrorInvalidConfiguration;
  softmax_xent_forward_kernel<<<grid, block, lc.shared_bytes, s>>>(losses, probs, logits, targets,
                                                                   V, err);
  return cudaGetLastError();
}

cudaError_t launch_softmax_xent_backward(float* dlogits, const float* probs, const int* targets,
                                         float dloss, int N, int V, cudaStream_t s) {
  if (N == 0 || V == 0) return cudaSuccess;
  PACI_LAUNCH(rows_by_col_tiles_config(N, V), softmax_xent_backward_kernel, s, dlogits, probs,
              targets, dloss, V);
  return cudaGetLastError();
}

cudaError_t launch_adamw(float* params, float* grads, float* m, float* v, size_t n,
                         float lr, float beta1, float beta2, float c1, float c2, float eps,
                         float weight_decay, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  PACI_LAUNCH(elementwise_config(n), adamw_kernel, s, params, grads, m, v, n, lr, beta1, beta2,
              c1, c2, eps, weight_decay);
  return cudaGetLastError();
}

cudaError_t launch_to_heads(void* dst, bool bf16_out, const float* src, int64_t src_stride, int B,
                            int T, int C, int NH, cudaStream_t s) {
  const size_t n = static_cast<size_t>(B) * T * C;
  if (n == 0) return cudaSuccess;
  const LaunchConfig lc = elementwise_config(n);
  // The grid-stride index must not overflow I: idx < n + grid·block <= 2^32 for 32-bit.
  const bool small = n + static_cast<size_t>(lc.threads()) < (size_t{1} << 32);
  if (bf16_out) {
    if (small) {
      PACI_LAUNCH(lc, (to_heads_kernel<bf16, unsigned>), s, static_cast<bf16*>(dst), src,
                  src_stride, T, C, NH, static_cast<unsigned>(n));
    } else {
      PACI_LAUNCH(lc, (to_heads_kernel<bf16, size_t>), s, static_cast<bf16*>(dst), src, src_stride,
                  T, C, NH, n);
    }
  } else {
    if (small) {
      PACI_LAUNCH(lc, (to_heads_kernel<float, unsigned>), s, static_cast<float*>(dst), src,
                  src_stride, T, C, NH, static_cast<unsigned>(n));
    } else {
      PACI_LAUNCH(lc, (to_heads_kernel<float, size_t>), s, static_cast<float*>(dst), src,
                  src_stride, T, C, NH, n);
    }
  }
  return cudaGetLastError();
}

cudaError_t launch_from_heads(float* dst, int64_t dst_stride, const float* src, int B, int T,
                              int C, int NH, bool accumulate, cudaStream_t s) {
  const size_t n = static_cast<size_t>(B) * T * C;
  if (n == 0) return cudaSuccess;
  const LaunchConfig lc = elementwise_config(n);
  const bool small = n + static_cast<size_t>(lc.threads()) < (size_t{1} << 32);
  if (accumulate) {
    if (small) {
      PACI_LAUNCH(lc, (from_heads_kernel<true, unsigned>), s, dst, dst_stride, src, T, C, NH,
                  static_cast<unsigned>(n));
    } else {
      PACI_LAUNCH(lc, (from_heads_kernel<true, size_t>), s, dst, dst_stride, src, T, C, NH, n);
    }
  } else {
    if (small) {
      PACI_LAUNCH(lc, (from_heads_kernel<false, unsigned>), s, dst, dst_stride, src, T, C, NH,
                  static_cast<unsigned>(n));
    } else {
      PACI_LAUNCH(lc, (from_heads_kernel<false, size_t>), s, dst, dst_stride, src, T, C, NH, n);
    }
  }
  return cudaGetLastError();
}

cudaError_t launch_causal_softmax(void* P, bool bf16_out, const float* S, int64_t rows, int T,
                                  cudaStream_t s) {
  if (rows == 0) return cudaSuccess;
  if (bf16_out) {
    PACI_LAUNCH(warp_per_row_config(rows), causal_softmax_kernel<bf16>, s, static_cast<bf16*>(P),
                S, rows, T);
  } else {
    PACI_LAUNCH(warp_per_row_config(rows), causal_softmax_kernel<float>, s,
                static_cast<float*>(P), S, rows, T);
  }
  return cudaGetLastError();
}

cudaError_t launch_causal_softmax_backward(void* dS, const void* P, bool bf16_io, const float* dP,
                                           int64_t rows, int T, float scale, cudaStream_t s) {
  if (rows == 0) return cudaSuccess;
  if (bf16_io) {
    PACI_LAUNCH(warp_per_row_config(rows), causal_softmax_backward_kernel<bf16>, s,
                static_cast<bf16*>(dS), static_cast<const bf16*>(P), dP, rows, T, scale);
  } else {
    PACI_LAUNCH(warp_per_row_config(rows), causal_softmax_backward_kernel<float>, s,
                static_cast<float*>(dS), static_cast<const float*>(P), dP, rows, T, scale);
  }
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace paci
