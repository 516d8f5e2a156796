// Per-element and per-row math the CUDA kernels use, written once for the device (nvcc) and
// the host (gcc), so tests/cuda/kernel_math_test.cc runs the very same functions on the CPU:
// index decompositions of the head permutes, the online-softmax update/merge of the
// cross-entropy kernel, GELU, the AdamW element step, the radix-sort key width.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#ifdef __CUDACC__
#define PACI_HD __host__ __device__ __forceinline__
#else
#define PACI_HD inline
#endif

namespace paci {
namespace cuda {

// Element idx of a head-major tensor [B·NH][T][hs] ↔ (b, h, t, i).
template <typename I>
struct HeadIndex {
  I b, h, t, i;
};
template <typename I>
PACI_HD HeadIndex<I> head_index(I idx, I hs, I T, I NH) {
  HeadIndex<I> r;
  r.i = idx % hs;
  const I rest = idx / hs;
  r.t = rest % T;
  const I bh = rest / T;
  r.h = bh % NH;
  r.b = bh / NH;
  return r;
}
// Offset of (b, t, h·hs + i) in a token-major tensor with rows of `row_stride` elements.
template <typename I>
PACI_HD size_t token_major_offset(const HeadIndex<I>& x, I hs, I T, int64_t row_stride) {
  return (static_cast<size_t>(x.b) * T + x.t) * static_cast<size_t>(row_stride) +
         static_cast<size_t>(x.h) * hs + x.i;
}

// Online softmax state (running max m, running Σ exp(x − m)).
PACI_HD void online_update(float& m, float& s, float x) {
  if (x > m) {
    s = (m == -INFINITY ? 0.f : s * expf(m - x)) + 1.f;
    m = x;
  } else if (x != -INFINITY) {
    s += expf(x - m);
  }
}
PACI_HD void online_merge(float& m, float& s, float m2, float s2) {
  if (m2 == -INFINITY) return;
  if (m == -INFINITY) {
    m = m2;
    s = s2;
    return;
  }
  const float M = m > m2 ? m : m2;
  s = s * expf(m - M) + s2 * expf(m2 - M);
  m = M;
}

constexpr float kGeluK = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluC = 0.044715f;
PACI_HD float gelu(float x) {
  return 0.5f * x * (1.f + tanhf(kGeluK * (x + kGeluC * x * x * x)));
}
PACI_HD float gelu_grad(float x) {
  const float u = kGeluK * (x + kGeluC * x * x * x);
  const float th = tanhf(u);
  const float sech2 = 1.f - th * th;
  return 0.5f * (1.f + th) + 0.5f * x * sech2 * kGeluK * (1.f + 3.f * kGeluC * x * x);
}

// One AdamW element (c1 = 1/(1−β1^t), c2 = 1/(1−β2^t)); the CPU backend's formula in float.
PACI_HD void adamw_step(float& p, float g, float& m, float& v, float lr, float b1, float b2,
                        float c1, float c2, float eps, float wd) {
  const float mi = b1 * m + (1.f - b1) * g;
  const float vi = b2 * v + (1.f - b2) * g * g;
  m = mi;
  v = vi;
  const float mhat = mi * c1, vhat = vi * c2;
  p = p - lr * (mhat / (sqrtf(vhat) + eps) + wd * p);
}

// Embedding backward over token positions stable-sorted by token (keys ascending, rows = the
// positions b·T + t, ascending within a token): the first position of each run of equal keys
// adds the run's rows of dout, in order, to its accumulator (column c).
PACI_HD bool is_run_start(const unsigned* keys, int p) { return p == 0 || keys[p - 1] != keys[p]; }
PACI_HD float sum_run(float acc, const unsigned* keys, const int* rows, const float* dout, int p,
                      int N, int C, int c) {
  const unsigned tok = keys[p];
  for (int q = p; q < N && keys[q] == tok; ++q) acc += dout[static_cast<size_t>(rows[q]) * C + c];
  return acc;
}

// Key bits the radix sort of tokens in [0, V) needs: the smallest b with 2^b >= V (>= 1).
PACI_HD int sort_key_bits(int V) {
  int b = 1;
  while (b < 32 && (1u << b) < static_cast<unsigned>(V)) ++b;
  return b;
}

}  // namespace cuda
}  // namespace paci
