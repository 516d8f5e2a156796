// Reference CPU math of every layer, as templates over the scalar type so the same code runs
// in fp32 (training) and in double (finite-difference gradient tests). Shapes and the
// accumulate (+=) convention are those documented in backend.h. Reductions accumulate in
// double whatever T is: deterministic, and accurate enough that fp32 losses over a 50k
// vocabulary do not drift with summation order.
#pragma once

#include <cblas.h>

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
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

// out[N,OC] = in[N,IC] · w[OC,IC]ᵀ + bias
template <typename T>
void matmul_forward(T* out, const T* in, const T* w, const T* bias, int N, int IC, int OC) {
  if (N == 0 || OC == 0) return;
  T beta = T(0);
  if (bias) {
    for (int n = 0; n < N; ++n) {
      T* row = out + static_cast<size_t>(n) * OC;
      for (int o = 0; o < OC; ++o) row[o] = bias[o];
    }
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

// dw[OC,IC] += dout[N,OC]ᵀ · in[N,IC]; dbias[OC] += column sums of dout
template <typename T>
void matmul_backward_weight(T* dw, T* dbias, const T* dout, const T* in, int N, int IC, int OC) {
  if (OC == 0) return;
  if (N > 0) gemm(CblasTrans, CblasNoTrans, OC, IC, N, T(1), dout, OC, in, IC, T(1), dw, IC);
  if (dbias) {
    std::vector<double> acc(OC, 0.0);
    for (int n = 0; n < N; ++n) {
      const T* row = dout + static_cast<size_t>(n) * OC;
      for (int o = 0; o < OC; ++o) acc[o] += row[o];
    }
    for (int o = 0; o < OC; ++o) dbias[o] += static_cast<T>(acc[o]);
  }
}

constexpr double kLayerNormEps = 1e-5;

template <typename T>
void layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* w, const T* b, int N,
                       int C) {
  for (int n = 0; n < N; ++n) {
    const T* x = in + static_cast<size_t>(n) * C;
    T* y = out + static_cast<size_t>(n) * C;
    double m = 0.0;
    for (int c = 0; c < C; ++c) m += x[c];
    m /= C;
    double var = 0.0;
    for (int c = 0; c < C; ++c) {
      const double d = x[c] - m;
      var += d * d;
    }
    var /= C;
    const T mt = static_cast<T>(m);
    const T s = static_cast<T>(1.0 / std::sqrt(var + kLayerNormEps));
    for (int c = 0; c < C; ++c) y[c] = (x[c] - mt) * s * w[c] + b[c];
    mean[n] = mt;
    rstd[n] = s;
  }
}

// din += rstd · (g − mean(g) − x̂·mean(g·x̂)), with g = dout·w and x̂ the normalised input.
template <typename T>
void layernorm_backward_input(T* din, const T* dout, const T* in, const T* w, const T* mean,
                              const T* rstd, int N, int C) {
  for (int n = 0; n < N; ++n) {
    const T* x = in + static_cast<size_t>(n) * C;
    const T* dy = dout + static_cast<size_t>(n) * C;
    T* dx = din + static_cast<size_t>(n) * C;
    const T m = mean[n], s = rstd[n];
    double sum_g = 0.0, sum_gx = 0.0;
    for (int c = 0; c < C; ++c) {
      const double g = static_cast<double>(dy[c]) * w[c];
      sum_g += g;
      sum_gx += g * static_cast<double>((x[c] - m) * s);
    }
    const T mean_g = static_cast<T>(sum_g / C), mean_gx = static_cast<T>(sum_gx / C);
    for (int c = 0; c < C; ++c) {
      const T xhat = (x[c] - m) * s;
      dx[c] += s * (dy[c] * w[c] - mean_g - xhat * mean_gx);
    }
  }
}

template <typename T>
void layernorm_backward_params(T* dw, T* db, const T* dout, const T* in, const T* mean,
                               const T* rstd, int N, int C) {
  std::vector<double> aw(C, 0.0), ab(C, 0.0);
  for (int n = 0; n < N; ++n) {
    const T* x = in + static_cast<size_t>(n) * C;
    const T* dy = dout + static_cast<size_t>(n) * C;
    const T m = mean[n], s = rstd[n];
    for (int c = 0; c < C; ++c) {
      aw[c] += static_cast<double>(dy[c]) * static_cast<double>((x[c] - m) * s);
      ab[c] += dy[c];
    }
  }
  for (int c = 0; c < C; ++c) {
    dw[c] += static_cast<T>(aw[c]);
    db[c] += static_cast<T>(ab[c]);
  }
}

template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH) {
  const int hs = C / NH;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hs));
  const size_t C3 = 3 * static_cast<size_t>(C);
  std::vector<double> score(Tn);
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      for (int t = 0; t < Tn; ++t) {
        const T* q = qkv + (static_cast<size_t>(b) * Tn + t) * C3 + h * hs;
        T* a = att + ((static_cast<size_t>(b) * NH + h) * Tn + t) * Tn;
        double mx = -INFINITY;
        for (int t2 = 0; t2 <= t; ++t2) {
          const T* k = qkv + (static_cast<size_t>(b) * Tn + t2) * C3 + C + h * hs;
          double dot = 0.0;
          for (int i = 0; i < hs; ++i) dot += static_cast<double>(q[i]) * k[i];
          score[t2] = dot * scale;
          if (score[t2] > mx) mx = score[t2];
        }
        double sum = 0.0;
        for (int t2 = 0; t2 <= t; ++t2) {
          score[t2] = std::exp(score[t2] - mx);
          sum += score[t2];
        }
        for (int t2 = 0; t2 < Tn; ++t2) a[t2] = t2 <= t ? static_cast<T>(score[t2] / sum) : T(0);
        T* o = out + (static_cast<size_t>(b) * Tn + t) * C + h * hs;
        for (int i = 0; i < hs; ++i) {
          double acc = 0.0;
          for (int t2 = 0; t2 <= t; ++t2) {
            const T* v = qkv + (static_cast<size_t>(b) * Tn + t2) * C3 + 2 * C + h * hs;
            acc += static_cast<double>(a[t2]) * v[i];
          }
          o[i] = static_cast<T>(acc);
        }
      }
    }
  }
}

template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int Tn, int C,
                        int NH) {
  const int hs = C / NH;
  const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(hs)));
  const size_t C3 = 3 * static_cast<size_t>(C);
  std::vector<T> datt(Tn), dpre(Tn);
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      for (int t = 0; t < Tn; ++t) {
        const size_t row = static_cast<size_t>(b) * Tn + t;
        const T* a = att + ((static_cast<size_t>(b) * NH + h) * Tn + t) * Tn;
        const T* dy = dout + row * C + h * hs;
        const T* q = qkv + row * C3 + h * hs;
        T* dq = dqkv + row * C3 + h * hs;
        // Through out = Σ a·v: to the probabilities and to v.
        double dot_a_datt = 0.0;
        for (int t2 = 0; t2 <= t; ++t2) {
          const size_t row2 = static_cast<size_t>(b) * Tn + t2;
          const T* v = qkv + row2 * C3 + 2 * C + h * hs;
          T* dv = dqkv + row2 * C3 + 2 * C + h * hs;
          double d = 0.0;
          for (int i = 0; i < hs; ++i) {
            d += static_cast<double>(dy[i]) * v[i];
            dv[i] += a[t2] * dy[i];
          }
          datt[t2] = static_cast<T>(d);
          dot_a_datt += static_cast<double>(a[t2]) * datt[t2];
        }
        // Through the softmax to the scaled scores, then to q and k.
        for (int t2 = 0; t2 <= t; ++t2) {
          dpre[t2] = a[t2] * (datt[t2] - static_cast<T>(dot_a_datt)) * scale;
        }
        for (int t2 = 0; t2 <= t; ++t2) {
          const size_t row2 = static_cast<size_t>(b) * Tn + t2;
          const T* k = qkv + row2 * C3 + C + h * hs;
          T* dk = dqkv + row2 * C3 + C + h * hs;
          for (int i = 0; i < hs; ++i) {
            dq[i] += dpre[t2] * k[i];
            dk[i] += dpre[t2] * q[i];
          }
        }
      }
    }
  }
}

constexpr double kGeluCoeff = 0.044715;
inline double gelu_sqrt_2_over_pi() { return std::sqrt(2.0 / M_PI); }

template <typename T>
void gelu_forward(T* out, const T* in, size_t n) {
  const T k = static_cast<T>(gelu_sqrt_2_over_pi()), c = static_cast<T>(kGeluCoeff);
  for (size_t i = 0; i < n; ++i) {
    const T x = in[i];
    out[i] = T(0.5) * x * (T(1) + std::tanh(k * (x + c * x * x * x)));
  }
}

template <typename T>
void gelu_backward(T* din, const T* in, const T* dout, size_t n) {
  const T k = static_cast<T>(gelu_sqrt_2_over_pi()), c = static_cast<T>(kGeluCoeff);
  for (size_t i = 0; i < n; ++i) {
    const T x = in[i];
    const T u = k * (x + c * x * x * x);
    const T th = std::tanh(u);
    const T sech2 = T(1) - th * th;
    const T grad = T(0.5) * (T(1) + th) + T(0.5) * x * sech2 * k * (T(1) + T(3) * c * x * x);
    din[i] += grad * dout[i];
  }
}

template <typename T>
void residual_forward(T* out, const T* a, const T* b, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <typename T>
void accumulate(T* dst, const T* src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += src[i];
}

template <typename T>
void residual_backward(T* da, T* db, const T* dout, size_t n) {
  accumulate(da, dout, n);
  accumulate(db, dout, n);
}

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

template <typename T>
void softmax_xent_forward(T* losses, T* probs, const T* logits, const int* targets, int N, int V) {
  for (int n = 0; n < N; ++n) {
    const int y = targets[n];
    if (y < 0 || y >= V) {
      throw std::out_of_range("cross-entropy: target " + std::to_string(y) + " at row " +
                              std::to_string(n) + " is outside the vocabulary [0, " +
                              std::to_string(V) + ")");
    }
    const T* z = logits + static_cast<size_t>(n) * V;
    T* p = probs + static_cast<size_t>(n) * V;
    const double zy = z[y];  // read before probs (which may alias logits) is written
    double mx = -INFINITY;
    for (int i = 0; i < V; ++i) mx = z[i] > mx ? z[i] : mx;
    // One exp per logit, in T (the exponentials of a 50k vocabulary dominate the fp32
    // forward; after subtracting the max they are in (0, 1], where T's exp is accurate);
    // store the unnormalised value, then scale.
    const T mxt = static_cast<T>(mx);
    double sum = 0.0;
    for (int i = 0; i < V; ++i) {
      const T e = std::exp(z[i] - mxt);
      p[i] = e;
      sum += e;
    }
    losses[n] = static_cast<T>(std::log(sum) + mx - zy);
    const double inv = 1.0 / sum;
    for (int i = 0; i < V; ++i) p[i] = static_cast<T>(p[i] * inv);
  }
}

template <typename T>
void softmax_xent_backward(T* dlogits, const T* probs, const int* targets, T dloss, int N, int V) {
  for (int n = 0; n < N; ++n) {
    const T* p = probs + static_cast<size_t>(n) * V;
    T* d = dlogits + static_cast<size_t>(n) * V;
    const int y = targets[n];
    for (int i = 0; i < V; ++i) d[i] = dloss * (p[i] - (i == y ? T(1) : T(0)));
  }
}

template <typename T>
void adamw_update(T* params, const T* grads, T* m, T* v, size_t n, double lr, double beta1,
                  double beta2, double beta1_pow, double beta2_pow, double eps,
                  double weight_decay) {
  const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
  const T c1 = static_cast<T>(1.0 / (1.0 - beta1_pow)),
          c2 = static_cast<T>(1.0 / (1.0 - beta2_pow));
  const T tlr = static_cast<T>(lr), teps = static_cast<T>(eps), twd = static_cast<T>(weight_decay);
  for (size_t i = 0; i < n; ++i) {
    const T g = grads[i];
    const T mi = b1 * m[i] + (T(1) - b1) * g;
    const T vi = b2 * v[i] + (T(1) - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const T mhat = mi * c1, vhat = vi * c2;
    params[i] -= tlr * (mhat / (std::sqrt(vhat) + teps) + twd * params[i]);
  }
}

}  // namespace cpu
}  // namespace paci
