// CPU math of every layer, as templates over the scalar type so the same code runs in fp32
// (training) and in double (finite-difference gradient tests). Shapes and the accumulate
// (+=) convention are those documented in backend.h.
//
// Speed: GEMMs (the linear layers and attention's per-head score and value products) go to
// BLAS; the rest is plain loops over fixed-width lane arrays that the compiler vectorises
// without -ffast-math (BUILD adds -O3 and SSE4.2), and fp32 computes exp and GELU with SSE
// intrinsics instead of libm's scalar calls.
//
// Determinism: every result is a fixed function of the inputs, the shapes and the machine's
// BLAS kernel. GEMMs run on a fixed grid of tiles and K slices, one single-threaded BLAS
// call each, so the thread count never changes what a tile computes (see gemm). Reductions run in
// a fixed order (lane i takes the elements ≡ i mod kLanes of a block; blocks are folded
// into a double in order). Kernels that use threads split only over independent rows or
// elements, so the bits do not depend on the thread count; the vector body and the scalar
// tail of a loop do the same IEEE operations (no FMA contraction: -ffp-contract=off).
#pragma once

#include <cblas.h>
#if defined(__x86_64__)
#include <smmintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace paci {
namespace cpu {

// ---- BLAS dispatch ----

inline void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha,
                      const float* A, int lda, const float* B, int ldb, float beta, float* C,
                      int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
inline void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, double alpha,
                      const double* A, int lda, const double* B, int ldb, double beta, double* C,
                      int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// ---- threads ----

// Runs fn(begin, end) over consecutive chunks covering [0, n), on at most `threads` threads
// (the caller included) and only if each gets at least `grain` items. Threads take chunks
// from a shared counter, and the caller returns as soon as every chunk is done, not when
// the helpers exit: on a shared machine a helper the OS starts late finds no work left and
// holds nobody up. Callers only split over independent items: which thread runs a chunk,
// and how many threads there are, changes no bits. fn must not throw.
template <typename F>
void parallel_for(int threads, size_t n, size_t grain, const F& fn) {
  grain = std::max<size_t>(grain, 1);
  const size_t workers = std::min(static_cast<size_t>(std::max(threads, 1)), n / grain);
  if (workers <= 1) {
    if (n > 0) fn(size_t{0}, n);
    return;
  }
  // Shared with detached helpers, which may outlive this call (without touching fn's data).
  struct Work {
    Work(const F& f, size_t n, size_t chunk) : fn(f), n(n), chunk(chunk) {}
    void run() {
      for (size_t b = next.fetch_add(chunk); b < n; b = next.fetch_add(chunk)) {
        const size_t e = std::min(n, b + chunk);
        fn(b, e);
        if (done.fetch_add(e - b) + (e - b) == n) {
          std::lock_guard<std::mutex> lock(mu);
          all_done.notify_all();
        }
      }
    }
    const F fn;
    const size_t n, chunk;
    std::atomic<size_t> next{0}, done{0};
    std::mutex mu;
    std::condition_variable all_done;
  };
  auto work = std::make_shared<Work>(fn, n, std::max(grain / 4, n / (workers * 8)) + 1);
  for (size_t w = 1; w < workers; ++w) std::thread([work] { work->run(); }).detach();
  work->run();
  std::unique_lock<std::mutex> lock(work->mu);
  work->all_done.wait(lock, [&] { return work->done.load() == n; });
}

// ---- GEMM: a fixed tiling, BLAS on each tile ----
//
// Bits by construction: C is cut into tiles of kGemmTileM x kGemmTileN and the reduction
// into slices of kGemmK, a grid that depends on the shape alone. Each tile is computed by
// one thread, slice after slice (beta = 1 after the first), each slice one single-threaded
// BLAS call of the tile's shape. So the arithmetic of every output element is fixed by the
// shape and the machine's BLAS kernel: the thread count only decides which thread runs a
// tile. (OpenBLAS's own threading splits M and N at points that depend on the thread count,
// and its kernels treat a row or column differently near a split: with the Haswell and
// Prescott kernels 2 threads gave other bits than 1.) The BLAS itself is kept at one thread
// (CpuBackend's constructor). A slice of kGemmK = 256 is within one K block of every x86
// sgemm and dgemm kernel (GEMM_Q >= 256), so each slice is one fixed-order pass over k.
constexpr int kGemmK = 256;
constexpr int kGemmTileM = 512;
constexpr int kGemmTileN = 1024;

// C[M,N] = alpha·op(A)[M,K]·op(B)[K,N] + beta·C, row-major; `threads` threads at most.
template <typename T>
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, T alpha, const T* A, int lda,
          const T* B, int ldb, T beta, T* C, int ldc, int threads = 1) {
  if (M <= 0 || N <= 0) return;
  const size_t tiles_m = (M + kGemmTileM - 1) / kGemmTileM;
  const size_t tiles_n = (N + kGemmTileN - 1) / kGemmTileN;
  auto tile = [=](size_t t) {
    const int m0 = static_cast<int>(t / tiles_n) * kGemmTileM;
    const int n0 = static_cast<int>(t % tiles_n) * kGemmTileN;
    const int mn = std::min(kGemmTileM, M - m0), nn = std::min(kGemmTileN, N - n0);
    // Row m0, column n0 of op(A), op(B) and C.
    const T* a = ta == CblasNoTrans ? A + static_cast<size_t>(m0) * lda : A + m0;
    const T* b = tb == CblasNoTrans ? B + n0 : B + static_cast<size_t>(n0) * ldb;
    T* c = C + static_cast<size_t>(m0) * ldc + n0;
    if (K == 0) {
      blas_gemm(ta, tb, mn, nn, 0, alpha, a, lda, b, ldb, beta, c, ldc);  // C = beta·C
      return;
    }
    for (int k0 = 0; k0 < K; k0 += kGemmK) {
      const int kn = std::min(kGemmK, K - k0);
      const T* ak = ta == CblasNoTrans ? a + k0 : a + static_cast<size_t>(k0) * lda;
      const T* bk = tb == CblasNoTrans ? b + static_cast<size_t>(k0) * ldb : b + k0;
      blas_gemm(ta, tb, mn, nn, kn, alpha, ak, lda, bk, ldb, k0 == 0 ? beta : T(1), c, ldc);
    }
  };
  parallel_for(threads, tiles_m * tiles_n, 1, [&](size_t t0, size_t t1) {
    for (size_t t = t0; t < t1; ++t) tile(t);
  });
}

// Items per thread below which a helper thread costs more than it saves (starting one
// takes ~20 µs, more on a busy machine).
constexpr size_t kElementGrain = 1 << 17;

// ---- exp and GELU over arrays ----
//
// Generic versions: libm (double, for the gradient tests; fp32 off x86-64). fp32 on x86-64
// has its own below, with SSE4.1: libm's scalar expf/tanhf would dominate the softmax over
// a 50k vocabulary and the GELU.

constexpr double kGeluCoeff = 0.044715;
inline double gelu_sqrt_2_over_pi() { return std::sqrt(2.0 / M_PI); }

// out[i] = e^(in[i] − shift)
template <typename T>
void exp_shifted(T* out, const T* in, T shift, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = std::exp(in[i] - shift);
}

// out = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
template <typename T>
void gelu_values(T* out, const T* in, size_t n) {
  const T k = static_cast<T>(gelu_sqrt_2_over_pi()), c = static_cast<T>(kGeluCoeff);
  for (size_t i = 0; i < n; ++i) {
    const T x = in[i];
    out[i] = T(0.5) * x * (T(1) + std::tanh(k * (x + c * x * x * x)));
  }
}

// din += gelu'(x)·dout
template <typename T>
void gelu_grads(T* din, const T* in, const T* dout, size_t n) {
  const T k = static_cast<T>(gelu_sqrt_2_over_pi()), c = static_cast<T>(kGeluCoeff);
  for (size_t i = 0; i < n; ++i) {
    const T x = in[i];
    const T th = std::tanh(k * (x + c * x * x * x));
    const T sech2 = T(1) - th * th;
    const T grad = T(0.5) * (T(1) + th) + T(0.5) * x * sech2 * k * (T(1) + T(3) * c * x * x);
    din[i] += grad * dout[i];
  }
}

#if defined(__x86_64__)
// The fp32 versions are compiled for SSE4.1 whatever the flags of the including file (the
// target attribute), so every file that includes this header gets the same code and bits
// (tests/cuda uses these kernels as its reference). SSE4.1 is x86-64-v2, as the BUILD
// flags of cpu_backend.cc assume anyway.
#define PACI_SSE41 __attribute__((target("sse4.1")))
namespace sse {

// e^x, 4 lanes: e^x = 2^n·e^r with n = round(x·log2 e) and r = x − n·ln 2 (ln 2 split in
// two so r is exact), e^r from Cephes' degree-6 minimax polynomial. Relative error < 1e-7
// on [−87, 88]; 0 below −87.3 (libm: a denormal); NaN passes through.
PACI_SSE41 inline __m128 exp(__m128 x) {
  // max/min with the constant first: an unordered compare returns the second operand, x.
  const __m128 c = _mm_min_ps(_mm_set1_ps(88.0f), _mm_max_ps(_mm_set1_ps(-87.0f), x));
  const __m128 n = _mm_round_ps(_mm_mul_ps(c, _mm_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m128 r = _mm_sub_ps(_mm_sub_ps(c, _mm_mul_ps(n, _mm_set1_ps(0.693359375f))),
                              _mm_mul_ps(n, _mm_set1_ps(-2.12194440e-4f)));
  __m128 p = _mm_set1_ps(1.9875691500e-4f);
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.3981999507e-3f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(8.3334519073e-3f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(4.1665795894e-2f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(1.6666665459e-1f));
  p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(5.0000001201e-1f));
  const __m128 er = _mm_add_ps(_mm_add_ps(_mm_mul_ps(_mm_mul_ps(p, r), r), r), _mm_set1_ps(1.0f));
  const __m128 scale =
      _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(n), _mm_set1_epi32(127)), 23));
  return _mm_andnot_ps(_mm_cmplt_ps(x, _mm_set1_ps(-87.3f)), _mm_mul_ps(er, scale));
}

// GELU from e = e^(2u), u = √(2/π)·(x + 0.044715·x³): tanh(u) = 1 − 2/(e + 1) (absolute
// error ~1e-7, what 0.5·x·(1 + tanh) needs) and sech²(u) = 4e/(e + 1)² (accurate also where
// tanh ≈ ±1; 0 once (e + 1)² overflows, the right limit).
PACI_SSE41 inline __m128 gelu_exp2u(__m128 x) {
  const __m128 k = _mm_set1_ps(static_cast<float>(gelu_sqrt_2_over_pi()));
  const __m128 c = _mm_set1_ps(static_cast<float>(kGeluCoeff));
  const __m128 u = _mm_mul_ps(k, _mm_add_ps(x, _mm_mul_ps(c, _mm_mul_ps(_mm_mul_ps(x, x), x))));
  return exp(_mm_add_ps(u, u));
}
PACI_SSE41 inline __m128 gelu(__m128 x) {
  const __m128 e1 = _mm_add_ps(gelu_exp2u(x), _mm_set1_ps(1.0f));
  const __m128 th = _mm_sub_ps(_mm_set1_ps(1.0f), _mm_div_ps(_mm_set1_ps(2.0f), e1));
  return _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(0.5f), x), _mm_add_ps(_mm_set1_ps(1.0f), th));
}
// gelu'(x) = 0.5·(1 + tanh) + 0.5·x·sech²·√(2/π)·(1 + 3·0.044715·x²)
PACI_SSE41 inline __m128 gelu_grad(__m128 x) {
  const __m128 k = _mm_set1_ps(static_cast<float>(gelu_sqrt_2_over_pi()));
  const __m128 c3 = _mm_set1_ps(3.0f * static_cast<float>(kGeluCoeff));
  const __m128 half = _mm_set1_ps(0.5f), one = _mm_set1_ps(1.0f);
  const __m128 e = gelu_exp2u(x);
  const __m128 e1 = _mm_add_ps(e, one);
  const __m128 th = _mm_sub_ps(one, _mm_div_ps(_mm_set1_ps(2.0f), e1));
  const __m128 sech2 = _mm_div_ps(_mm_mul_ps(_mm_set1_ps(4.0f), e), _mm_mul_ps(e1, e1));
  const __m128 poly = _mm_add_ps(one, _mm_mul_ps(c3, _mm_mul_ps(x, x)));
  return _mm_add_ps(_mm_mul_ps(half, _mm_add_ps(one, th)),
                    _mm_mul_ps(_mm_mul_ps(_mm_mul_ps(_mm_mul_ps(half, x), sech2), k), poly));
}

// The last n % 4 elements of an array go through a zero-padded copy, so that every element
// goes through the same instructions.
inline __m128 load_tail(const float* p, size_t count) {
  float a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  std::copy(p, p + count, a);
  return _mm_loadu_ps(a);
}
inline void store_tail(float* p, __m128 v, size_t count) {
  float a[4];
  _mm_storeu_ps(a, v);
  std::copy(a, a + count, p);
}

}  // namespace sse

PACI_SSE41 inline void exp_shifted(float* out, const float* in, float shift, size_t n) {
  const __m128 s = _mm_set1_ps(shift);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(out + i, sse::exp(_mm_sub_ps(_mm_loadu_ps(in + i), s)));
  if (i < n)
    sse::store_tail(out + i, sse::exp(_mm_sub_ps(sse::load_tail(in + i, n - i), s)), n - i);
}

PACI_SSE41 inline void gelu_values(float* out, const float* in, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm_storeu_ps(out + i, sse::gelu(_mm_loadu_ps(in + i)));
  if (i < n) sse::store_tail(out + i, sse::gelu(sse::load_tail(in + i, n - i)), n - i);
}

PACI_SSE41 inline void gelu_grads(float* din, const float* in, const float* dout, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m128 g = _mm_mul_ps(sse::gelu_grad(_mm_loadu_ps(in + i)), _mm_loadu_ps(dout + i));
    _mm_storeu_ps(din + i, _mm_add_ps(_mm_loadu_ps(din + i), g));
  }
  if (i < n) {
    const size_t r = n - i;
    const __m128 g =
        _mm_mul_ps(sse::gelu_grad(sse::load_tail(in + i, r)), sse::load_tail(dout + i, r));
    sse::store_tail(din + i, _mm_add_ps(sse::load_tail(din + i, r), g), r);
  }
}
#undef PACI_SSE41
#endif  // __x86_64__

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
void matmul_forward(T* out, const T* in, const T* w, const T* bias, int N, int IC, int OC,
                    int threads = 1) {
  if (N == 0 || OC == 0) return;
  T beta = T(0);
  if (bias) {
    for (int n = 0; n < N; ++n)
      std::memcpy(out + static_cast<size_t>(n) * OC, bias, OC * sizeof(T));
    beta = T(1);
  }
  gemm(CblasNoTrans, CblasTrans, N, OC, IC, T(1), in, IC, w, IC, beta, out, OC, threads);
}

// din[N,IC] += dout[N,OC] · w[OC,IC]
template <typename T>
void matmul_backward_input(T* din, const T* dout, const T* w, int N, int IC, int OC,
                           int threads = 1) {
  if (N == 0 || IC == 0) return;
  gemm(CblasNoTrans, CblasNoTrans, N, IC, OC, T(1), dout, OC, w, IC, T(1), din, IC, threads);
}

// dw[OC,IC] += dout[N,OC]ᵀ · in[N,IC]; dbias[OC] += column sums of dout (in double, row
// order)
template <typename T>
void matmul_backward_weight(T* dw, T* dbias, const T* dout, const T* in, int N, int IC, int OC,
                            int threads = 1) {
  if (OC == 0) return;
  if (N > 0)
    gemm(CblasTrans, CblasNoTrans, OC, IC, N, T(1), dout, OC, in, IC, T(1), dw, IC, threads);
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
      const double sum_gx = sum_of<T>(C, [=](size_t c) { return dy[c] * w[c] * ((x[c] - m) * s); });
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
// block's last visible column, skipping most of the masked upper triangle. Heads (b, h) are
// independent (each writes its own columns of out / dqkv and its own slice of att), so the
// threads split the heads; within a head everything runs on one thread, in a fixed order.

inline int attention_block(int Tn) { return Tn <= 64 ? Tn : std::max(64, (Tn / 8 + 15) / 16 * 16); }
// Heads per thread at least: a head costs about T² elements of work.
inline size_t attention_head_grain(int Tn) {
  return kElementGrain / (static_cast<size_t>(Tn) * Tn) + 1;
}

template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH,
                       int threads = 1) {
  const int hs = C / NH, bs = attention_block(Tn);
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hs)));
  const int ld = 3 * C;
  auto head = [=](int b, int h) {
    const T* q = qkv + static_cast<size_t>(b) * Tn * ld + h * hs;
    const T* k = q + C;
    const T* v = q + 2 * C;
    T* P = att + (static_cast<size_t>(b) * NH + h) * Tn * Tn;
    T* o = out + static_cast<size_t>(b) * Tn * C + h * hs;
    // One row block at a time: its scores, their softmax and its rows of out, while the
    // block of P (bs x T at most) is still in cache.
    for (int r0 = 0; r0 < Tn; r0 += bs) {
      const int r1 = std::min(Tn, r0 + bs);
      T* Pb = P + static_cast<size_t>(r0) * Tn;
      gemm(CblasNoTrans, CblasTrans, r1 - r0, r1, hs, scale, q + static_cast<size_t>(r0) * ld, ld,
           k, ld, T(0), Pb, Tn);
      for (int t = r0; t < r1; ++t) {
        T* row = P + static_cast<size_t>(t) * Tn;
        const size_t n = t + 1;
        const T mx = max_of(row, n);
        exp_shifted(row, row, mx, n);
        const T inv = static_cast<T>(1.0 / sum_of<T>(n, [row](size_t i) { return row[i]; }));
        for (size_t i = 0; i < n; ++i) row[i] *= inv;
        std::fill(row + n, row + Tn, T(0));
      }
      gemm(CblasNoTrans, CblasNoTrans, r1 - r0, hs, r1, T(1), Pb, Tn, v, ld, T(0),
           o + static_cast<size_t>(r0) * C, C);
    }
  };
  parallel_for(threads, static_cast<size_t>(B) * NH, attention_head_grain(Tn),
               [&](size_t i0, size_t i1) {
                 for (size_t i = i0; i < i1; ++i) head(static_cast<int>(i / NH), static_cast<int>(i % NH));
               });
}

template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int Tn, int C,
                        int NH, int threads = 1) {
  const int hs = C / NH, bs = attention_block(Tn);
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hs)));
  const int ld = 3 * C;
  auto head = [=](int b, int h, T* dS) {  // dS: [T, T] scratch, dP then dS in place
    const size_t qoff = static_cast<size_t>(b) * Tn * ld + h * hs;
    const T *q = qkv + qoff, *k = q + C, *v = q + 2 * C;
    T *dq = dqkv + qoff, *dk = dq + C, *dv = dq + 2 * C;
    const T* P = att + (static_cast<size_t>(b) * NH + h) * Tn * Tn;
    const T* dO = dout + static_cast<size_t>(b) * Tn * C + h * hs;
    // Row blocks from the last: each output block (rows of dq, dk or dv) is one GEMM, so the
    // order changes no bits, and when block r0 is reached the rows of dS below it are done,
    // which its dk product reads. The block's dP and dS stay in cache for its dq product.
    const int blocks = (Tn + bs - 1) / bs;
    for (int blk = blocks - 1; blk >= 0; --blk) {
      const int r0 = blk * bs, r1 = std::min(Tn, r0 + bs);
      // dP[t, t2] = dO[t]·v[t2] for t in [r0, r1), t2 < r1
      gemm(CblasNoTrans, CblasTrans, r1 - r0, r1, hs, T(1), dO + static_cast<size_t>(r0) * C, C,
           v, ld, T(0), dS + static_cast<size_t>(r0) * Tn, Tn);
      // dv[t2] += Σ_{t >= r0} P[t, t2]·dO[t] for t2 in [r0, r1)
      gemm(CblasTrans, CblasNoTrans, r1 - r0, hs, Tn - r0, T(1),
           P + static_cast<size_t>(r0) * Tn + r0, Tn, dO + static_cast<size_t>(r0) * C, C, T(1),
           dv + static_cast<size_t>(r0) * ld, ld);
      for (int t = r0; t < r1; ++t) {
        const T* p = P + static_cast<size_t>(t) * Tn;
        T* d = dS + static_cast<size_t>(t) * Tn;
        const size_t n = t + 1;
        const T dot = static_cast<T>(sum_of<T>(n, [p, d](size_t i) { return p[i] * d[i]; }));
        for (size_t i = 0; i < n; ++i) d[i] = p[i] * (d[i] - dot) * scale;
        // The GEMMs below read the whole diagonal block: clear the masked part of the row.
        std::fill(d + n, d + r1, T(0));
      }
      // dq[t] += Σ_{t2 < r1} dS[t, t2]·k[t2] for t in [r0, r1)
      gemm(CblasNoTrans, CblasNoTrans, r1 - r0, hs, r1, T(1), dS + static_cast<size_t>(r0) * Tn,
           Tn, k, ld, T(1), dq + static_cast<size_t>(r0) * ld, ld);
      // dk[t2] += Σ_{t >= r0} dS[t, t2]·q[t] for t2 in [r0, r1)
      gemm(CblasTrans, CblasNoTrans, r1 - r0, hs, Tn - r0, T(1),
           dS + static_cast<size_t>(r0) * Tn + r0, Tn, q + static_cast<size_t>(r0) * ld, ld, T(1),
           dk + static_cast<size_t>(r0) * ld, ld);
    }
  };
  parallel_for(threads, static_cast<size_t>(B) * NH, attention_head_grain(Tn),
               [&](size_t i0, size_t i1) {
                 std::vector<T> dS(static_cast<size_t>(Tn) * Tn);
                 for (size_t i = i0; i < i1; ++i)
                   head(static_cast<int>(i / NH), static_cast<int>(i % NH), dS.data());
               });
}

// ---- GELU (tanh approximation) ----

template <typename T>
void gelu_forward(T* out, const T* in, size_t n, int threads = 1) {
  parallel_for(threads, n, kElementGrain,
               [=](size_t i0, size_t i1) { gelu_values(out + i0, in + i0, i1 - i0); });
}

template <typename T>
void gelu_backward(T* din, const T* in, const T* dout, size_t n, int threads = 1) {
  parallel_for(threads, n, kElementGrain,
               [=](size_t i0, size_t i1) { gelu_grads(din + i0, in + i0, dout + i0, i1 - i0); });
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
      exp_shifted(p, z, mx, V);
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
//
// AdamW is one pass over params, grads, m and v (28 bytes read and written per value, more
// than any other kernel of a step): it also clears each gradient as it reads it, so no
// separate zeroing pass follows. The element loop is compiled twice, for the build's SSE
// and for AVX2 (chosen at run time): its operations (+, −, ·, /, √) are correctly rounded
// IEEE operations and nothing is contracted into an FMA (the avx2 target enables no FMA),
// so both give the same bits, those of kernel_math.h's adamw_step (tests/cuda checks both).

template <typename T>
struct AdamwCoeffs {
  T b1, b2, c1, c2, lr, eps, wd;
};

template <typename T>
AdamwCoeffs<T> adamw_coeffs(double lr, double beta1, double beta2, double beta1_pow,
                            double beta2_pow, double eps, double weight_decay) {
  return {static_cast<T>(beta1), static_cast<T>(beta2), static_cast<T>(1.0 / (1.0 - beta1_pow)),
          static_cast<T>(1.0 / (1.0 - beta2_pow)), static_cast<T>(lr), static_cast<T>(eps),
          static_cast<T>(weight_decay)};
}

// Elements [i0, i1): the update, and grads set to 0. Inlined into each ISA's wrapper below.
template <typename T>
[[gnu::always_inline]] inline void adamw_elements(T* params, T* grads, T* m, T* v, size_t i0,
                                                  size_t i1, const AdamwCoeffs<T>& c) {
  for (size_t i = i0; i < i1; ++i) {
    const T g = grads[i];
    const T mi = c.b1 * m[i] + (T(1) - c.b1) * g;
    const T vi = c.b2 * v[i] + (T(1) - c.b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    grads[i] = T(0);
    const T mhat = mi * c.c1, vhat = vi * c.c2;
    params[i] -= c.lr * (mhat / (std::sqrt(vhat) + c.eps) + c.wd * params[i]);
  }
}

inline void adamw_elements_sse(float* params, float* grads, float* m, float* v, size_t i0,
                               size_t i1, const AdamwCoeffs<float>& c) {
  adamw_elements(params, grads, m, v, i0, i1, c);
}
#if defined(__x86_64__)
__attribute__((target("avx2"))) inline void adamw_elements_avx2(float* params, float* grads,
                                                                float* m, float* v, size_t i0,
                                                                size_t i1,
                                                                const AdamwCoeffs<float>& c) {
  adamw_elements(params, grads, m, v, i0, i1, c);
}
inline bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#endif

// params −= AdamW step; m, v updated; grads zeroed (see above). `threads` split the elements.
template <typename T>
void adamw_update(T* params, T* grads, T* m, T* v, size_t n, double lr, double beta1,
                  double beta2, double beta1_pow, double beta2_pow, double eps, double weight_decay,
                  int threads = 1) {
  const AdamwCoeffs<T> c =
      adamw_coeffs<T>(lr, beta1, beta2, beta1_pow, beta2_pow, eps, weight_decay);
  parallel_for(threads, n, kElementGrain, [=](size_t i0, size_t i1) {
    if constexpr (std::is_same_v<T, float>) {
#if defined(__x86_64__)
      if (have_avx2()) return adamw_elements_avx2(params, grads, m, v, i0, i1, c);
#endif
      adamw_elements_sse(params, grads, m, v, i0, i1, c);
    } else {
      adamw_elements(params, grads, m, v, i0, i1, c);
    }
  });
}

}  // namespace cpu
}  // namespace paci
