// CPU math of every layer, as templates over the scalar type so the same code runs in fp32
// (training) and in double (finite-difference gradient tests). Shapes and the accumulate
// (+=) convention are those documented in backend.h.
//
// Speed: GEMMs (the linear layers and attention's per-head score and value products) go to
// BLAS; the rest is written as plain loops over fixed-width lane arrays that the compiler
// vectorises without -ffast-math (BUILD adds -O3 -fno-math-errno), and fp32 uses its own
// exp/tanh (exp_kernel) instead of libm's scalar calls.
//
// Determinism: every result is a fixed function of the inputs and the shapes. Reductions
// run in a fixed order (lane i takes the elements ≡ i mod kLanes of a block; blocks are
// folded into a double in order). Kernels that use threads split only over independent
// rows or elements, so the bits do not depend on the thread count; the vector body and
// the scalar tail of a loop do the same IEEE operations (no FMA contraction: -ffp-contract=off).
#pragma once

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace paci {
namespace cpu {

// ---- BLAS dispatch ----
inline void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha,
                 const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, double alpha,
                 const double* A, int lda, const double* B, int ldb, double beta, double* C,
                 int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---- threads ----

// Runs fn(begin, end) over [0, n) in at most `threads` contiguous chunks of at least `grain`
// items, the calling thread taking the first. Callers only split over independent items,
// so the result is the same for any thread count. fn must not throw.
template <typename F>
void parallel_for(int threads, size_t n, size_t grain, const F& fn) {
  const size_t chunks = std::min(static_cast<size_t>(std::max(threads, 1)),
                                 n / std::max<size_t>(grain, 1));
  if (chunks <= 1) {
    if (n > 0) fn(size_t{0}, n);
    return;
  }
  const size_t per = (n + chunks - 1) / chunks;
  std::vector<std::thread> pool;
  pool.reserve(chunks - 1);
  for (size_t c = 1; c < chunks; ++c) {
    const size_t b = c * per, e = std::min(n, b + per);
    if (b < e) pool.emplace_back([&fn, b, e] { fn(b, e); });
  }
  fn(size_t{0}, std::min(n, per));
  for (std::thread& t : pool) t.join();
}

// Items per thread below which spawning one costs more than it saves (~20 µs).
constexpr size_t kElementGrain = 1 << 16;

// ---- elementary functions ----

// e^x in fp32 for vectorised loops: e^x = 2^n·e^r with n = round(x·log2 e) and
// r = x − n·ln 2 (ln 2 split in two so r is exact), e^r from Cephes' degree-6 minimax
// polynomial; relative error < 2e-7 (about 1 ulp) on the whole range. Below −87.3 it returns
// 0 (libm would return a denormal); NaN propagates.
inline float exp_kernel(float x) {
  float c = x > 88.0f ? 88.0f : x;
  c = c < -87.0f ? -87.0f : c;
  // Round to nearest by the 1.5·2^23 trick (vectorises without SSE4.1's roundps).
  const float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (c - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) * (1 << 23);
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < -87.3f ? 0.0f : er * scale;
}
inline double exp_kernel(double x) { return std::exp(x); }

// tanh(u) = 1 − 2/(e^{2u} + 1): absolute error ~1e-7 in fp32, which is what GELU's
// 0.5·x·(1 + tanh) needs (its relative error near u = 0 does not matter there).
inline float tanh_kernel(float u) {
  float a = u > 9.0f ? 9.0f : u;  // tanh(±9) rounds to ±1 in fp32
  a = a < -9.0f ? -9.0f : a;
  return 1.0f - 2.0f / (exp_kernel(2.0f * a) + 1.0f);
}
inline double tanh_kernel(double u) { return std::tanh(u); }

// ---- fixed-order reductions ----

// Partial sums: lane i of a block of kBlock elements holds the elements ≡ i (mod kLanes);
// each block's lanes are added up pairwise and folded into a double. T's precision inside
// a block (≤ 16 terms per lane) and double across blocks.
constexpr int kLanes = 16;
constexpr int kBlock = 256;

template <typename T>
double fold_lanes(const T* lanes) {
  T s[kLanes / 2];
  for (int i = 0; i < kLanes / 2; ++i) s[i] = lanes[i] + lanes[i + kLanes / 2];
  for (int w = kLanes / 4; w >= 1; w /= 2)
    for (int i = 0; i < w; ++i) s[i] = s[i] + s[i + w];
  return static_cast<double>(s[0]);
}

// Σ f(i) for i in [0, n).
template <typename T, typename F>
double sum_of(size_t n, const F& f) {
  double total = 0.0;
  for (size_t b0 = 0; b0 < n; b0 += kBlock) {
    const size_t len = std::min<size_t>(kBlock, n - b0);
    T lanes[kLanes] = {};
    size_t i = 0;
    for (; i + kLanes <= len; i += kLanes)
      for (int j = 0; j < kLanes; ++j) lanes[j] += f(b0 + i + j);
    for (int j = 0; i + j < len; ++j) lanes[j] += f(b0 + i + j);
    total += fold_lanes(lanes);
  }
  return total;
}

// max over x[0, n) (NaN is skipped, as by a plain `x > m ? x : m` loop).
template <typename T>
T max_of(const T* x, size_t n) {
  T lanes[kLanes];
  for (T& l : lanes) l = -INFINITY;
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
  for (int j = 0; i + j < n; ++j) lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
  T m = lanes[0];
  for (int j = 1; j < kLanes; ++j) m = lanes[j] > m ? lanes[j] : m;
  return m;
}

// ---- linear layers ----

// out[N,OC] = in[N,IC] · w[OC,IC]ᵀ + bias
template <typename T>
void matmul_forward(T* out, const T* in, const T* w, const T* bias, int N, int IC, int OC) {
  if (N == 0 || OC == 0) return;
  T beta = T(0);
  if (bias) {
    for (int n = 0; n < N; ++n) std::memcpy(out + static_cast<size_t>(n) * OC, bias, OC * sizeof(T));
    beta = T(1);
  }
  gemm(CblasNoTrans, CblasTrans, N, OC, IC, T(1), in, IC, w, IC, beta, out, OC);
}

// din[N,IC] += dout[N,OC] · w[OC,IC]
template <typename T>
void matmul_backward_input(T* din, const T* dout, const T* w, int N, int IC, int OC) {
  if (N == 0 || IC == 0) return;
  gemm(CblasNoTrans, CblasNoTrans, N, IC, OC, T(1), dout, OC, w, IC, T(1), din, IC);
}

// dw[OC,IC] += dout[N,OC]ᵀ · in[N,IC]; dbias[OC] += column sums of dout (in double, row
// order)
template <typename T>
void matmul_backward_weight(T* dw, T* dbias, const T* dout, const T* in, int N, int IC, int OC) {
  if (OC == 0) return;
  if (N > 0) gemm(CblasTrans, CblasNoTrans, OC, IC, N, T(1), dout, OC, in, IC, T(1), dw, IC);
  if (dbias) {
    std::vector<double> acc(OC, 0.0);
    for (int n = 0; n < N; ++n) {
      const T* row = dout + static_cast<size_t>(n) * OC;
      for (int o = 0; o < OC; ++o) acc[o] += static_cast<double>(row[o]);
    }
    for (int o = 0; o < OC; ++o) dbias[o] += static_cast<T>(acc[o]);
  }
}

// ---- LayerNorm (statistics by sum_of: T lanes, double across blocks) ----

constexpr double kLayerNormEps = 1e-5;

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* w, const T* b, int N, int C,
                       int threads = 1) {
  parallel_for(threads, N, kElementGrain / C + 1, [=](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; ++n) {
      const T* x = in + n * C;
      T* y = out + n * C;
      const T mt = static_cast<T>(sum_of<T>(C, [x](size_t c) { return x[c]; }) / C);
      const double var = sum_of<T>(C, [x, mt](size_t c) { return (x[c] - mt) * (x[c] - mt); }) / C;
      const T s = static_cast<T>(1.0 / std::sqrt(var + kLayerNormEps));
      for (int c = 0; c < C; ++c) y[c] = (x[c] - mt) * s * w[c] + b[c];
      mean[n] = mt;
      rstd[n] = s;
    }
  });
}

// din += rstd · (g − mean(g) − x̂·mean(g·x̂)), with g = dout·w and x̂ the normalised input.
template <typename T>
void layernorm_backward_input(T* din, const T* dout, const T* in, const T* w, const T* mean,
                              const T* rstd, int N, int C, int threads = 1) {
  parallel_for(threads, N, kElementGrain / C + 1, [=](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; ++n) {
      const T* x = in + n * C;
      const T* dy = dout + n * C;
      T* dx = din + n * C;
      const T m = mean[n], s = rstd[n];
      const double sum_g = sum_of<T>(C, [dy, w](size_t c) { return dy[c] * w[c]; });
      const double sum_gx =
          sum_of<T>(C, [=](size_t c) { return dy[c] * w[c] * ((x[c] - m) * s); });
      const T mean_g = static_cast<T>(sum_g / C), mean_gx = static_cast<T>(sum_gx / C);
      for (int c = 0; c < C; ++c) {
        const T xhat = (x[c] - m) * s;
        dx[c] += s * (dy[c] * w[c] - mean_g - xhat * mean_gx);
      }
    }
  });
}

// dw[C] += Σ_n dout·x̂, db[C] += Σ_n dout: per channel in double, in row order (threads
// split the channels).
template <typename T>
void layernorm_backward_params(T* dw, T* db, const T* dout, const T* in, const T* mean,
                               const T* rstd, int N, int C, int threads = 1) {
  const size_t grain = std::max<size_t>(16, kElementGrain / std::max(N, 1));
  parallel_for(threads, C, grain, [=](size_t c0, size_t c1) {
    const size_t w = c1 - c0;
    std::vector<double> aw(w, 0.0), ab(w, 0.0);
    for (int n = 0; n < N; ++n) {
      const T* x = in + static_cast<size_t>(n) * C + c0;
      const T* dy = dout + static_cast<size_t>(n) * C + c0;
      const T m = mean[n], s = rstd[n];
      for (size_t c = 0; c < w; ++c) {
        aw[c] += static_cast<double>(dy[c] * ((x[c] - m) * s));
        ab[c] += static_cast<double>(dy[c]);
      }
    }
    for (size_t c = 0; c < w; ++c) {
      dw[c0 + c] += static_cast<T>(aw[c]);
      db[c0 + c] += static_cast<T>(ab[c]);
    }
  });
}

// ---- causal self-attention ----
//
// Per (batch, head), with q, k, v the [T, hs] slices of qkv (row stride 3C):
//   forward:  S = scale·q·kᵀ, P = causal softmax(S) (kept in att), out = P·v;
//   backward: dP = dout·vᵀ, dv += Pᵀ·dout, dS = P ⊙ (dP − rowsum(P ⊙ dP))·scale,
//             dq += dS·k, dk += dSᵀ·q.
// Every product is a GEMM over row blocks of `attention_block(T)` rows that stop at the
// block's last visible column, skipping most of the masked upper triangle.

inline int attention_block(int Tn) {
  return Tn <= 64 ? Tn : std::max(64, (Tn / 8 + 15) / 16 * 16);
}

template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH) {
  const int hs = C / NH, bs = attention_block(Tn);
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hs)));
  const int ld = 3 * C;
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      const T* q = qkv + static_cast<size_t>(b) * Tn * ld + h * hs;
      const T* k = q + C;
      const T* v = q + 2 * C;
      T* P = att + (static_cast<size_t>(b) * NH + h) * Tn * Tn;
      T* o = out + static_cast<size_t>(b) * Tn * C + h * hs;
      for (int r0 = 0; r0 < Tn; r0 += bs) {
        const int r1 = std::min(Tn, r0 + bs);
        gemm(CblasNoTrans, CblasTrans, r1 - r0, r1, hs, scale, q + static_cast<size_t>(r0) * ld,
             ld, k, ld, T(0), P + static_cast<size_t>(r0) * Tn, Tn);
      }
      for (int t = 0; t < Tn; ++t) {
        T* row = P + static_cast<size_t>(t) * Tn;
        const int n = t + 1;
        const T mx = max_of(row, n);
        for (int i = 0; i < n; ++i) row[i] = exp_kernel(row[i] - mx);
        const T inv = static_cast<T>(1.0 / sum_of<T>(n, [row](size_t i) { return row[i]; }));
        for (int i = 0; i < n; ++i) row[i] *= inv;
        std::fill(row + n, row + Tn, T(0));
      }
      for (int r0 = 0; r0 < Tn; r0 += bs) {
        const int r1 = std::min(Tn, r0 + bs);
        gemm(CblasNoTrans, CblasNoTrans, r1 - r0, hs, r1, T(1), P + static_cast<size_t>(r0) * Tn,
             Tn, v, ld, T(0), o + static_cast<size_t>(r0) * C, C);
      }
    }
  }
}

template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int Tn, int C,
                        int NH) {
  const int hs = C / NH, bs = attention_block(Tn);
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hs)));
  const int ld = 3 * C;
  std::vector<T> dP(static_cast<size_t>(Tn) * Tn);  // dP, then dS in place
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      const size_t qoff = static_cast<size_t>(b) * Tn * ld + h * hs;
      const T *q = qkv + qoff, *k = q + C, *v = q + 2 * C;
      T *dq = dqkv + qoff, *dk = dq + C, *dv = dq + 2 * C;
      const T* P = att + (static_cast<size_t>(b) * NH + h) * Tn * Tn;
      const T* dO = dout + static_cast<size_t>(b) * Tn * C + h * hs;
      T* dS = dP.data();
      for (int r0 = 0; r0 < Tn; r0 += bs) {
        const int r1 = std::min(Tn, r0 + bs);
        // dP[t, t2] = dO[t]·v[t2] for t2 < r1
        gemm(CblasNoTrans, CblasTrans, r1 - r0, r1, hs, T(1), dO + static_cast<size_t>(r0) * C, C,
             v, ld, T(0), dS + static_cast<size_t>(r0) * Tn, Tn);
        // dv[t2] += Σ_{t >= r0} P[t, t2]·dO[t] for t2 in [r0, r1)
        gemm(CblasTrans, CblasNoTrans, r1 - r0, hs, Tn - r0, T(1),
             P + static_cast<size_t>(r0) * Tn + r0, Tn, dO + static_cast<size_t>(r0) * C, C, T(1),
             dv + static_cast<size_t>(r0) * ld, ld);
      }
      for (int t = 0; t < Tn; ++t) {
        const T* p = P + static_cast<size_t>(t) * Tn;
        T* d = dS + static_cast<size_t>(t) * Tn;
        const int n = t + 1;
        const T dot = static_cast<T>(sum_of<T>(n, [p, d](size_t i) { return p[i] * d[i]; }));
        for (int i = 0; i < n; ++i) d[i] = p[i] * (d[i] - dot) * scale;
        // The GEMMs below read the whole diagonal block: clear the masked part of the row.
        const int block_end = std::min(Tn, (t / bs + 1) * bs);
        std::fill(d + n, d + block_end, T(0));
      }
      for (int r0 = 0; r0 < Tn; r0 += bs) {
        const int r1 = std::min(Tn, r0 + bs);
        // dq[t] += Σ_{t2 < r1} dS[t, t2]·k[t2] for t in [r0, r1)
        gemm(CblasNoTrans, CblasNoTrans, r1 - r0, hs, r1, T(1), dS + static_cast<size_t>(r0) * Tn,
             Tn, k, ld, T(1), dq + static_cast<size_t>(r0) * ld, ld);
        // dk[t2] += Σ_{t >= r0} dS[t, t2]·q[t] for t2 in [r0, r1)
        gemm(CblasTrans, CblasNoTrans, r1 - r0, hs, Tn - r0, T(1),
             dS + static_cast<size_t>(r0) * Tn + r0, Tn, q + static_cast<size_t>(r0) * ld, ld,
             T(1), dk + static_cast<size_t>(r0) * ld, ld);
      }
    }
  }
}

// ---- GELU (tanh approximation) ----

constexpr double kGeluCoeff = 0.044715;
inline double gelu_sqrt_2_over_pi() { return std::sqrt(2.0 / M_PI); }

template <typename T>
void gelu_forward(T* out, const T* in, size_t n, int threads = 1) {
  const T k = static_cast<T>(gelu_sqrt_2_over_pi()), c = static_cast<T>(kGeluCoeff);
  parallel_for(threads, n, kElementGrain, [=](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) {
      const T x = in[i];
      out[i] = T(0.5) * x * (T(1) + tanh_kernel(k * (x + c * x * x * x)));
    }
  });
}

template <typename T>
void gelu_backward(T* din, const T* in, const T* dout, size_t n, int threads = 1) {
  const T k = static_cast<T>(gelu_sqrt_2_over_pi()), c = static_cast<T>(kGeluCoeff);
  parallel_for(threads, n, kElementGrain, [=](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) {
      const T x = in[i];
      const T th = tanh_kernel(k * (x + c * x * x * x));
      const T sech2 = T(1) - th * th;
      const T grad = T(0.5) * (T(1) + th) + T(0.5) * x * sech2 * k * (T(1) + T(3) * c * x * x);
      din[i] += grad * dout[i];
    }
  });
}

// ---- elementwise ----

template <typename T>
void residual_forward(T* out, const T* a, const T* b, size_t n, int threads = 1) {
  parallel_for(threads, n, 4 * kElementGrain, [=](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) out[i] = a[i] + b[i];
  });
}

template <typename T>
void accumulate(T* dst, const T* src, size_t n, int threads = 1) {
  parallel_for(threads, n, 4 * kElementGrain, [=](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) dst[i] += src[i];
  });
}

template <typename T>
void residual_backward(T* da, T* db, const T* dout, size_t n, int threads = 1) {
  accumulate(da, dout, n, threads);
  accumulate(db, dout, n, threads);
}

// ---- embedding ----

template <typename T>
void embedding_forward(T* out, const int* tokens, const T* wte, const T* wpe, int B, int Tn, int C,
                       int V) {
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < Tn; ++t) {
      const int tok = tokens[b * Tn + t];
      if (tok < 0 || tok >= V) {
        throw std::out_of_range("embedding: token " + std::to_string(tok) + " at [" +
                                std::to_string(b) + "," + std::to_string(t) +
                                "] is outside the vocabulary [0, " + std::to_string(V) + ")");
      }
      T* o = out + (static_cast<size_t>(b) * Tn + t) * C;
      const T* e = wte + static_cast<size_t>(tok) * C;
      const T* p = wpe + static_cast<size_t>(t) * C;
      for (int c = 0; c < C; ++c) o[c] = e[c] + p[c];
    }
  }
}

// Sequential scatter-add in (b, t) order: deterministic.
template <typename T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const int* tokens, int B, int Tn, int C) {
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < Tn; ++t) {
      const T* d = dout + (static_cast<size_t>(b) * Tn + t) * C;
      T* e = dwte + static_cast<size_t>(tokens[b * Tn + t]) * C;
      T* p = dwpe + static_cast<size_t>(t) * C;
      for (int c = 0; c < C; ++c) {
        e[c] += d[c];
        p[c] += d[c];
      }
    }
  }
}

// ---- softmax + cross-entropy over the vocabulary ----

template <typename T>
void softmax_xent_forward(T* losses, T* probs, const T* logits, const int* targets, int N, int V,
                          int threads = 1) {
  for (int n = 0; n < N; ++n) {  // validate first: the threads below must not throw
    const int y = targets[n];
    if (y < 0 || y >= V) {
      throw std::out_of_range("cross-entropy: target " + std::to_string(y) + " at row " +
                              std::to_string(n) + " is outside the vocabulary [0, " +
                              std::to_string(V) + ")");
    }
  }
  parallel_for(threads, N, kElementGrain / V + 1, [=](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; ++n) {
      const T* z = logits + n * V;
      T* p = probs + n * V;
      const double zy = z[targets[n]];  // read before probs (which may alias logits) is written
      const T mx = max_of(z, V);
      // After subtracting the max the exponentials are in (0, 1]; store them unnormalised,
      // then scale.
      for (int i = 0; i < V; ++i) p[i] = exp_kernel(z[i] - mx);
      const double sum = sum_of<T>(V, [p](size_t i) { return p[i]; });
      losses[n] = static_cast<T>(std::log(sum) + static_cast<double>(mx) - zy);
      const T inv = static_cast<T>(1.0 / sum);
      for (int i = 0; i < V; ++i) p[i] *= inv;
    }
  });
}

template <typename T>
void softmax_xent_backward(T* dlogits, const T* probs, const int* targets, T dloss, int N, int V,
                           int threads = 1) {
  parallel_for(threads, N, kElementGrain / V + 1, [=](size_t n0, size_t n1) {
    for (size_t n = n0; n < n1; ++n) {
      const T* p = probs + n * V;
      T* d = dlogits + n * V;
      const int y = targets[n];
      const T py = p[y];  // before d (which may alias p) is written
      for (int i = 0; i < V; ++i) d[i] = dloss * p[i];
      d[y] = dloss * (py - T(1));
    }
  });
}

// ---- optimizer ----

template <typename T>
void adamw_update(T* params, const T* grads, T* m, T* v, size_t n, double lr, double beta1,
                  double beta2, double beta1_pow, double beta2_pow, double eps, double weight_decay,
                  int threads = 1) {
  const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
  const T c1 = static_cast<T>(1.0 / (1.0 - beta1_pow)),
          c2 = static_cast<T>(1.0 / (1.0 - beta2_pow));
  const T tlr = static_cast<T>(lr), teps = static_cast<T>(eps), twd = static_cast<T>(weight_decay);
  parallel_for(threads, n, kElementGrain, [=](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) {
      const T g = grads[i];
      const T mi = b1 * m[i] + (T(1) - b1) * g;
      const T vi = b2 * v[i] + (T(1) - b2) * g * g;
      m[i] = mi;
      v[i] = vi;
      const T mhat = mi * c1, vhat = vi * c2;
      params[i] -= tlr * (mhat / (std::sqrt(vhat) + teps) + twd * params[i]);
    }
  });
}

}  // namespace cpu
}  // namespace paci
