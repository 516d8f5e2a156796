#include "exec/cuda/gemm_plan.h"

namespace paci {
namespace cuda {

ColumnMajorCall to_column_major(const RowMajorGemm& g) {
  ColumnMajorCall c;
  c.transa = g.tb;
  c.transb = g.ta;
  c.m = g.N;
  c.n = g.M;
  c.k = g.K;
  c.lda = g.ldb;
  c.ldb = g.lda;
  c.ldc = g.ldc;
  c.stride_a = g.stride_b;
  c.stride_b = g.stride_a;
  c.stride_c = g.stride_c;
  c.batch = g.batch;
  return c;
}

std::string gemm_error(const RowMajorGemm& g) {
  if (g.M < 0 || g.N < 0 || g.K < 0) return "negative GEMM size";
  if (g.batch < 1) return "batch must be >= 1";
  const int a_cols = g.ta == Trans::kN ? g.K : g.M;
  const int b_cols = g.tb == Trans::kN ? g.N : g.K;
  if (g.lda < (a_cols > 1 ? a_cols : 1)) return "lda smaller than A's row length";
  if (g.ldb < (b_cols > 1 ? b_cols : 1)) return "ldb smaller than B's row length";
  if (g.ldc < (g.N > 1 ? g.N : 1)) return "ldc smaller than N";
  return {};
}

RowMajorGemm linear_forward_gemm(int N, int IC, int OC) {
  RowMajorGemm g;
  g.ta = Trans::kN;
  g.tb = Trans::kT;
  g.M = N;
  g.N = OC;
  g.K = IC;
  g.lda = IC;
  g.ldb = IC;
  g.ldc = OC;
  return g;
}

RowMajorGemm linear_backward_input_gemm(int N, int IC, int OC) {
  RowMajorGemm g;
  g.ta = Trans::kN;
  g.tb = Trans::kN;
  g.M = N;
  g.N = IC;
  g.K = OC;
  g.lda = OC;
  g.ldb = IC;
  g.ldc = IC;
  return g;
}

RowMajorGemm linear_backward_weight_gemm(int N, int IC, int OC) {
  RowMajorGemm g;
  g.ta = Trans::kT;
  g.tb = Trans::kN;
  g.M = OC;
  g.N = IC;
  g.K = N;
  g.lda = OC;
  g.ldb = IC;
  g.ldc = IC;
  return g;
}

namespace {
RowMajorGemm batched(Trans ta, Trans tb, int M, int N, int K, int lda, int ldb, int ldc,
                     int64_t sa, int64_t sb, int64_t sc, int batch) {
  RowMajorGemm g;
  g.ta = ta;
  g.tb = tb;
  g.M = M;
  g.N = N;
  g.K = K;
  g.lda = lda;
  g.ldb = ldb;
  g.ldc = ldc;
  g.stride_a = sa;
  g.stride_b = sb;
  g.stride_c = sc;
  g.batch = batch;
  return g;
}
}  // namespace

RowMajorGemm attention_scores_gemm(int BNH, int T, int hs) {
  const int64_t th = static_cast<int64_t>(T) * hs, tt = static_cast<int64_t>(T) * T;
  return batched(Trans::kN, Trans::kT, T, T, hs, hs, hs, T, th, th, tt, BNH);
}
RowMajorGemm attention_values_gemm(int BNH, int T, int hs) {
  const int64_t th = static_cast<int64_t>(T) * hs, tt = static_cast<int64_t>(T) * T;
  return batched(Trans::kN, Trans::kN, T, hs, T, T, hs, hs, tt, th, th, BNH);
}
RowMajorGemm attention_dvalues_gemm(int BNH, int T, int hs) {
  const int64_t th = static_cast<int64_t>(T) * hs, tt = static_cast<int64_t>(T) * T;
  return batched(Trans::kT, Trans::kN, T, hs, T, T, hs, hs, tt, th, th, BNH);
}
RowMajorGemm attention_dprobs_gemm(int BNH, int T, int hs) {
  const int64_t th = static_cast<int64_t>(T) * hs, tt = static_cast<int64_t>(T) * T;
  return batched(Trans::kN, Trans::kT, T, T, hs, hs, hs, T, th, th, tt, BNH);
}
RowMajorGemm attention_dquery_gemm(int BNH, int T, int hs) {
  const int64_t th = static_cast<int64_t>(T) * hs, tt = static_cast<int64_t>(T) * T;
  return batched(Trans::kN, Trans::kN, T, hs, T, T, hs, hs, tt, th, th, BNH);
}
RowMajorGemm attention_dkey_gemm(int BNH, int T, int hs) {
  const int64_t th = static_cast<int64_t>(T) * hs, tt = static_cast<int64_t>(T) * T;
  return batched(Trans::kT, Trans::kN, T, hs, T, T, hs, hs, tt, th, th, BNH);
}

}  // namespace cuda
}  // namespace paci
