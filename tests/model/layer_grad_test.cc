// Finite-difference checks, in double, of every layer's backward against its forward, plus
// forward checks against independent references (finite differences alone cannot catch a
// forward that is consistently wrong).
//
// Each test builds the scalar L = Σ R ⊙ out(x) with a fixed random R, runs the backward with
// dout = R into gradient buffers PRE-FILLED with random values (so the += convention is
// checked too: grad_after − grad_before must equal ∂L/∂x), and compares every element with
// a central difference at h = 1e-5.
//
// Tolerance |a − fd| <= 1e-9 + 1e-6·max(|a|, |fd|): in double the central difference has
// truncation error ~h²·|L'''| ≈ 1e-10 and round-off ~1e-16·|L|/h ≈ 1e-10 for |L| ~ 10,
// while a wrong gradient (a missing term, a transposed index) is off by O(1e-2) or more.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "exec/model/cpu_backend.h"
#include "exec/model/cpu_kernels.h"
#include "tests/model/grad_check.h"

namespace paci {
namespace {

using testing::check_gradient;
using testing::random_vector;

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// grad_after − grad_before
std::vector<double> delta(const std::vector<double>& after, const std::vector<double>& before) {
  std::vector<double> d(after.size());
  for (size_t i = 0; i < d.size(); ++i) d[i] = after[i] - before[i];
  return d;
}

class LayerGradTest : public ::testing::Test {
 protected:
  // Attention's dqkv against finite differences: qkv, R and the pre-filled gradient drawn from
  // seeds seed, seed + 1, seed + 2.
  void check_attention_gradient(int B, int T, int C, int NH, uint64_t seed) {
    auto qkv = random_vector(B * T * 3 * C, seed);
    const auto R = random_vector(B * T * C, seed + 1);
    std::vector<double> out(B * T * C), att(B * NH * T * T);
    auto loss = [&] {
      be.attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
      return dot(out, R);
    };
    loss();
    const auto d0 = random_vector(qkv.size(), seed + 2);
    auto dqkv = d0;
    be.attention_backward(dqkv.data(), R.data(), qkv.data(), att.data(), B, T, C, NH);
    check_gradient("attention dqkv", qkv.data(), qkv.size(), delta(dqkv, d0).data(), loss);
  }

  CpuBackendT<double> be;
};

TEST_F(LayerGradTest, MatmulForwardMatchesNaiveLoop) {
  const int N = 5, IC = 7, OC = 6;
  auto in = random_vector(N * IC, 1), w = random_vector(OC * IC, 2), b = random_vector(OC, 3);
  std::vector<double> out(N * OC);
  be.matmul_forward(out.data(), in.data(), w.data(), b.data(), N, IC, OC);
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) {
      double ref = b[o];
      for (int i = 0; i < IC; ++i) ref += in[n * IC + i] * w[o * IC + i];
      EXPECT_NEAR(out[n * OC + o], ref, 1e-12) << "n=" << n << " o=" << o;
    }
  }
}

TEST_F(LayerGradTest, Matmul) {
  const int N = 5, IC = 7, OC = 6;
  auto in = random_vector(N * IC, 1), w = random_vector(OC * IC, 2), b = random_vector(OC, 3);
  const auto R = random_vector(N * OC, 4);
  std::vector<double> out(N * OC);
  auto loss = [&] {
    be.matmul_forward(out.data(), in.data(), w.data(), b.data(), N, IC, OC);
    return dot(out, R);
  };
  const auto din0 = random_vector(N * IC, 5), dw0 = random_vector(OC * IC, 6),
             db0 = random_vector(OC, 7);
  auto din = din0, dw = dw0, db = db0;
  be.matmul_backward_input(din.data(), R.data(), w.data(), N, IC, OC);
  be.matmul_backward_weight(dw.data(), db.data(), R.data(), in.data(), N, IC, OC);
  check_gradient("matmul din", in.data(), in.size(), delta(din, din0).data(), loss);
  check_gradient("matmul dw", w.data(), w.size(), delta(dw, dw0).data(), loss);
  check_gradient("matmul dbias", b.data(), b.size(), delta(db, db0).data(), loss);
}

TEST_F(LayerGradTest, LayerNormForwardNormalises) {
  const int N = 3, C = 16;
  auto in = random_vector(N * C, 8, 3.0, 1.5);
  std::vector<double> w(C, 1.0), b(C, 0.0), out(N * C), mean(N), rstd(N);
  be.layernorm_forward(out.data(), mean.data(), rstd.data(), in.data(), w.data(), b.data(), N, C);
  for (int n = 0; n < N; ++n) {
    double m = 0, v = 0;
    for (int c = 0; c < C; ++c) m += out[n * C + c];
    m /= C;
    for (int c = 0; c < C; ++c) v += (out[n * C + c] - m) * (out[n * C + c] - m);
    v /= C;
    EXPECT_NEAR(m, 0.0, 1e-12);
    EXPECT_NEAR(v, 1.0, 1e-5);  // eps = 1e-5 in the denominator, variance ~9
  }
}

TEST_F(LayerGradTest, LayerNorm) {
  const int N = 4, C = 9;
  auto in = random_vector(N * C, 10, 2.0, 0.5), w = random_vector(C, 11, 0.3, 1.0),
       b = random_vector(C, 12, 0.3);
  const auto R = random_vector(N * C, 13);
  std::vector<double> out(N * C), mean(N), rstd(N);
  auto loss = [&] {
    be.layernorm_forward(out.data(), mean.data(), rstd.data(), in.data(), w.data(), b.data(), N, C);
    return dot(out, R);
  };
  loss();
  const auto din0 = random_vector(N * C, 14), dw0 = random_vector(C, 15),
             db0 = random_vector(C, 16);
  auto din = din0, dw = dw0, db = db0;
  be.layernorm_backward_input(din.data(), R.data(), in.data(), w.data(), mean.data(), rstd.data(),
                              N, C);
  be.layernorm_backward_params(dw.data(), db.data(), R.data(), in.data(), mean.data(), rstd.data(),
                               N, C);
  check_gradient("layernorm din", in.data(), in.size(), delta(din, din0).data(), loss);
  check_gradient("layernorm dw", w.data(), w.size(), delta(dw, dw0).data(), loss);
  check_gradient("layernorm db", b.data(), b.size(), delta(db, db0).data(), loss);
}

TEST_F(LayerGradTest, AttentionForwardIsCausal) {
  const int B = 1, T = 4, C = 4, NH = 2;
  // q = 0 everywhere: uniform attention over the visible prefix, so out[t] = mean(v[0..t]).
  auto qkv = random_vector(B * T * 3 * C, 20);
  for (int t = 0; t < T; ++t)
    for (int c = 0; c < C; ++c) qkv[t * 3 * C + c] = 0.0;
  std::vector<double> out(B * T * C), att(B * NH * T * T);
  be.attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
  for (int t = 0; t < T; ++t) {
    for (int c = 0; c < C; ++c) {
      double ref = 0;
      for (int t2 = 0; t2 <= t; ++t2) ref += qkv[t2 * 3 * C + 2 * C + c];
      EXPECT_NEAR(out[t * C + c], ref / (t + 1), 1e-12) << "t=" << t << " c=" << c;
    }
    for (int h = 0; h < NH; ++h)
      for (int t2 = t + 1; t2 < T; ++t2) EXPECT_EQ(att[(h * T + t) * T + t2], 0.0);
  }
}

TEST_F(LayerGradTest, Attention) { check_attention_gradient(2, 5, 8, 2, 21); }

// Above 64 positions attention runs over row blocks (attention_block: 64 rows at T = 150, the
// last block partial), the backward from the last block: the forward against a naive causal
// softmax and the backward against finite differences, where the blocks meet.
TEST_F(LayerGradTest, AttentionOverSeveralRowBlocks) {
  for (const int T : {65, 150}) {
    SCOPED_TRACE("T=" + std::to_string(T));
    const int B = 1, C = 4, NH = 2, hs = C / NH;
    ASSERT_LT(cpu::attention_block(T), T);
    const auto qkv = random_vector(B * T * 3 * C, 31);
    std::vector<double> out(B * T * C), att(B * NH * T * T);
    be.attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    for (int h = 0; h < NH; ++h)
      for (int t = 0; t < T; ++t) {
        std::vector<double> s(t + 1);
        double mx = -1e300, z = 0;
        for (int u = 0; u <= t; ++u) {
          double d = 0;
          for (int i = 0; i < hs; ++i) d += qkv[t * 3 * C + h * hs + i] * qkv[u * 3 * C + C + h * hs + i];
          s[u] = d / std::sqrt(static_cast<double>(hs));
          mx = std::max(mx, s[u]);
        }
        for (int u = 0; u <= t; ++u) z += s[u] = std::exp(s[u] - mx);
        for (int i = 0; i < hs; ++i) {
          double ref = 0;
          for (int u = 0; u <= t; ++u) ref += s[u] / z * qkv[u * 3 * C + 2 * C + h * hs + i];
          ASSERT_NEAR(out[t * C + h * hs + i], ref, 1e-12) << "h=" << h << " t=" << t;
        }
      }
    check_attention_gradient(B, T, C, NH, 31);
  }
}

TEST_F(LayerGradTest, GeluForwardKnownValues) {
  // 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) evaluated independently (Python's math).
  const std::vector<double> x = {-3.0, -1.0, 0.0, 0.5, 1.0, 2.0};
  const std::vector<double> ref = {-0.0036373920817729943, -0.15880800939172324, 0.0,
                                   0.34571400982514394,    0.8411919906082768,   1.954597694087775};
  std::vector<double> y(x.size());
  be.gelu_forward(y.data(), x.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], ref[i], 1e-12) << "x=" << x[i];
}

TEST_F(LayerGradTest, Gelu) {
  const size_t n = 50;
  auto in = random_vector(n, 30, 2.0);
  const auto R = random_vector(n, 31);
  std::vector<double> out(n);
  auto loss = [&] {
    be.gelu_forward(out.data(), in.data(), n);
    return dot(out, R);
  };
  const auto d0 = random_vector(n, 32);
  auto din = d0;
  be.gelu_backward(din.data(), in.data(), R.data(), n);
  check_gradient("gelu din", in.data(), n, delta(din, d0).data(), loss);
}

TEST_F(LayerGradTest, Residual) {
  const size_t n = 12;
  auto a = random_vector(n, 40), b = random_vector(n, 41);
  const auto R = random_vector(n, 42);
  std::vector<double> out(n);
  auto loss = [&] {
    be.residual_forward(out.data(), a.data(), b.data(), n);
    return dot(out, R);
  };
  loss();
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], a[i] + b[i]);
  const auto da0 = random_vector(n, 43), db0 = random_vector(n, 44);
  auto da = da0, db = db0;
  be.residual_backward(da.data(), db.data(), R.data(), n);
  check_gradient("residual da", a.data(), n, delta(da, da0).data(), loss);
  check_gradient("residual db", b.data(), n, delta(db, db0).data(), loss);
}

TEST_F(LayerGradTest, Embedding) {
  const int B = 2, T = 4, C = 3, V = 5;
  const std::vector<int> tokens = {1, 3, 1, 4, 0, 3, 3, 2};  // repeats: scatter-add
  auto wte = random_vector(V * C, 50), wpe = random_vector(T * C, 51);
  const auto R = random_vector(B * T * C, 52);
  std::vector<double> out(B * T * C);
  auto loss = [&] {
    be.embedding_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C, V);
    return dot(out, R);
  };
  loss();
  EXPECT_EQ(out[(1 * T + 2) * C + 1], wte[3 * C + 1] + wpe[2 * C + 1]);
  const auto dwte0 = random_vector(V * C, 53), dwpe0 = random_vector(T * C, 54);
  auto dwte = dwte0, dwpe = dwpe0;
  be.embedding_backward(dwte.data(), dwpe.data(), R.data(), tokens.data(), B, T, C);
  check_gradient("embedding dwte", wte.data(), wte.size(), delta(dwte, dwte0).data(), loss);
  check_gradient("embedding dwpe", wpe.data(), wpe.size(), delta(dwpe, dwpe0).data(), loss);
  const std::vector<int> bad = {0, 1, 2, 5, 0, 0, 0, 0};
  EXPECT_THROW(be.embedding_forward(out.data(), bad.data(), wte.data(), wpe.data(), B, T, C, V),
               std::out_of_range);
}

TEST_F(LayerGradTest, SoftmaxCrossEntropy) {
  const int N = 4, V = 7;
  const std::vector<int> targets = {0, 6, 3, 3};
  auto logits = random_vector(N * V, 60, 2.0);
  const double dloss = 0.37;  // e.g. loss_scale / N
  std::vector<double> probs(N * V), losses(N);
  auto loss = [&] {
    be.softmax_xent_forward(losses.data(), probs.data(), logits.data(), targets.data(), N, V);
    double s = 0;
    for (double l : losses) s += l;
    return dloss * s;
  };
  loss();
  // Reference loss of row 0: logsumexp(z) − z[y].
  double lse = 0;
  for (int i = 0; i < V; ++i) lse += std::exp(logits[i]);
  EXPECT_NEAR(losses[0], std::log(lse) - logits[0], 1e-12);
  // The backward WRITES dlogits (no accumulation): prefill with garbage to check.
  auto dlogits = random_vector(N * V, 61, 100.0);
  be.softmax_xent_backward(dlogits.data(), probs.data(), targets.data(), dloss, N, V);
  check_gradient("softmax-xent dlogits", logits.data(), logits.size(), dlogits.data(), loss);
  // In place over the probabilities (the way StageModel uses it) gives the same values.
  loss();  // the finite differences left probs at a perturbed point
  auto inplace = probs;
  be.softmax_xent_backward(inplace.data(), inplace.data(), targets.data(), dloss, N, V);
  EXPECT_EQ(inplace, dlogits);
}

TEST_F(LayerGradTest, SoftmaxCrossEntropyRejectsBadTarget) {
  std::vector<double> logits(6, 0.0), probs(6), losses(2);
  const std::vector<int> targets = {0, 3};
  EXPECT_THROW(
      be.softmax_xent_forward(losses.data(), probs.data(), logits.data(), targets.data(), 2, 3),
      std::out_of_range);
}

}  // namespace
}  // namespace paci
