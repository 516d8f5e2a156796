// Runs each row-major GEMM through the column-major argument mapping with a naive
// column-major GEMM (cuBLAS's semantics) and compares with the row-major definition.
#include "exec/cuda/gemm_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace paci {
namespace cuda {
namespace {

// cuBLAS semantics: column-major, element (i, j) of X with leading dim ld is X[i + j·ld].
void colmajor_gemm(const ColumnMajorCall& c, float alpha, const float* A, const float* B,
                   float beta, float* C) {
  for (int b = 0; b < c.batch; ++b) {
    const float* a = A + b * c.stride_a;
    const float* bb = B + b * c.stride_b;
    float* cc = C + b * c.stride_c;
    for (int i = 0; i < c.m; ++i) {
      for (int j = 0; j < c.n; ++j) {
        double acc = 0.0;
        for (int p = 0; p < c.k; ++p) {
          const float av = c.transa == Trans::kN ? a[i + p * c.lda] : a[p + i * c.lda];
          const float bv = c.transb == Trans::kN ? bb[p + j * c.ldb] : bb[j + p * c.ldb];
          acc += static_cast<double>(av) * bv;
        }
        float& out = cc[i + j * c.ldc];
        out = static_cast<float>(alpha * acc + beta * out);
      }
    }
  }
}

// Row-major definition: C[i][j] = Σ_p op(A)[i][p] · op(B)[p][j].
void rowmajor_gemm(const RowMajorGemm& g, float alpha, const float* A, const float* B, float beta,
                   float* C) {
  for (int b = 0; b < g.batch; ++b) {
    const float* a = A + b * g.stride_a;
    const float* bb = B + b * g.stride_b;
    float* cc = C + b * g.stride_c;
    for (int i = 0; i < g.M; ++i) {
      for (int j = 0; j < g.N; ++j) {
        double acc = 0.0;
        for (int p = 0; p < g.K; ++p) {
          const float av = g.ta == Trans::kN ? a[i * g.lda + p] : a[p * g.lda + i];
          const float bv = g.tb == Trans::kN ? bb[p * g.ldb + j] : bb[j * g.ldb + p];
          acc += static_cast<double>(av) * bv;
        }
        float& out = cc[i * g.ldc + j];
        out = static_cast<float>(alpha * acc + beta * out);
      }
    }
  }
}

size_t extent_a(const RowMajorGemm& g) {
  const int rows = g.ta == Trans::kN ? g.M : g.K;
  return static_cast<size_t>((g.batch - 1) * g.stride_a + rows * g.lda);
}
size_t extent_b(const RowMajorGemm& g) {
  const int rows = g.tb == Trans::kN ? g.K : g.N;
  return static_cast<size_t>((g.batch - 1) * g.stride_b + rows * g.ldb);
}
size_t extent_c(const RowMajorGemm& g) {
  return static_cast<size_t>((g.batch - 1) * g.stride_c + g.M * g.ldc);
}

std::vector<float> random(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

void expect_mapping_matches(const RowMajorGemm& g, float alpha, float beta) {
  ASSERT_EQ(gemm_error(g), "");
  auto A = random(extent_a(g), 1), B = random(extent_b(g), 2), C0 = random(extent_c(g), 3);
  auto ref = C0, got = C0;
  rowmajor_gemm(g, alpha, A.data(), B.data(), beta, ref.data());
  const ColumnMajorCall c = to_column_major(g);
  // cuBLAS A = row-major B, cuBLAS B = row-major A
  colmajor_gemm(c, alpha, B.data(), A.data(), beta, got.data());
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-5) << i;
}

TEST(GemmPlan, LinearLayers) {
  for (auto s : {std::vector<int>{5, 7, 3}, std::vector<int>{1, 1, 1}, std::vector<int>{16, 33, 12}}) {
    const int N = s[0], IC = s[1], OC = s[2];
    expect_mapping_matches(linear_forward_gemm(N, IC, OC), 1.f, 0.f);
    expect_mapping_matches(linear_forward_gemm(N, IC, OC), 1.f, 1.f);  // over a bias fill
    expect_mapping_matches(linear_backward_input_gemm(N, IC, OC), 1.f, 1.f);
    expect_mapping_matches(linear_backward_weight_gemm(N, IC, OC), 1.f, 1.f);
  }
}

TEST(GemmPlan, LinearShapesMatchBackendConventions) {
  // out[N,OC] = in[N,IC] · w[OC,IC]ᵀ: cuBLAS sees m = OC, n = N, k = IC, A = w (transposed).
  const ColumnMajorCall f = to_column_major(linear_forward_gemm(8192, 768, 2304));
  EXPECT_EQ(f.m, 2304);
  EXPECT_EQ(f.n, 8192);
  EXPECT_EQ(f.k, 768);
  EXPECT_EQ(f.transa, Trans::kT);
  EXPECT_EQ(f.transb, Trans::kN);
  EXPECT_EQ(f.lda, 768);
  EXPECT_EQ(f.ldb, 768);
  EXPECT_EQ(f.ldc, 2304);
  const ColumnMajorCall w = to_column_major(linear_backward_weight_gemm(8192, 768, 2304));
  EXPECT_EQ(w.m, 768);
  EXPECT_EQ(w.n, 2304);
  EXPECT_EQ(w.k, 8192);
  EXPECT_EQ(w.transa, Trans::kN);
  EXPECT_EQ(w.transb, Trans::kT);
}

TEST(GemmPlan, Attention) {
  for (auto s : {std::vector<int>{3, 5, 4}, std::vector<int>{2, 1, 3}, std::vector<int>{4, 7, 2}}) {
    const int BNH = s[0], T = s[1], hs = s[2];
    expect_mapping_matches(attention_scores_gemm(BNH, T, hs), 0.5f, 0.f);
    expect_mapping_matches(attention_values_gemm(BNH, T, hs), 1.f, 0.f);
    expect_mapping_matches(attention_dvalues_gemm(BNH, T, hs), 1.f, 0.f);
    expect_mapping_matches(attention_dprobs_gemm(BNH, T, hs), 1.f, 0.f);
    expect_mapping_matches(attention_dquery_gemm(BNH, T, hs), 1.f, 0.f);
    expect_mapping_matches(attention_dkey_gemm(BNH, T, hs), 1.f, 0.f);
  }
}

// The attention GEMMs against the attention definition itself (head-major q, k, v).
TEST(GemmPlan, AttentionSemantics) {
  const int BNH = 2, T = 4, hs = 3;
  auto q = random(BNH * T * hs, 4), k = random(BNH * T * hs, 5), v = random(BNH * T * hs, 6);
  std::vector<float> S(BNH * T * T, 0.f), O(BNH * T * hs, 0.f);
  const auto gs = attention_scores_gemm(BNH, T, hs);
  colmajor_gemm(to_column_major(gs), 1.f, k.data(), q.data(), 0.f, S.data());
  for (int b = 0; b < BNH; ++b)
    for (int i = 0; i < T; ++i)
      for (int j = 0; j < T; ++j) {
        double d = 0;
        for (int p = 0; p < hs; ++p) d += q[(b * T + i) * hs + p] * k[(b * T + j) * hs + p];
        EXPECT_NEAR(S[(b * T + i) * T + j], d, 1e-5);
      }
  colmajor_gemm(to_column_major(attention_values_gemm(BNH, T, hs)), 1.f, v.data(), S.data(), 0.f,
                O.data());
  for (int b = 0; b < BNH; ++b)
    for (int i = 0; i < T; ++i)
      for (int p = 0; p < hs; ++p) {
        double d = 0;
        for (int j = 0; j < T; ++j) d += S[(b * T + i) * T + j] * v[(b * T + j) * hs + p];
        EXPECT_NEAR(O[(b * T + i) * hs + p], d, 1e-5);
      }
}

TEST(GemmPlan, Errors) {
  RowMajorGemm g = linear_forward_gemm(4, 8, 2);
  EXPECT_EQ(gemm_error(g), "");
  g.lda = 7;
  EXPECT_NE(gemm_error(g), "");
  g = linear_forward_gemm(4, 8, 2);
  g.ldc = 1;
  EXPECT_NE(gemm_error(g), "");
  g = linear_forward_gemm(4, 8, 2);
  g.batch = 0;
  EXPECT_NE(gemm_error(g), "");
}

}  // namespace
}  // namespace cuda
}  // namespace paci
