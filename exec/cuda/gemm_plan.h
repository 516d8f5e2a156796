// Row-major GEMMs (as the Backend API and cblas state them) mapped onto cuBLAS's
// column-major interface. Plain C++: tests/cuda/gemm_plan_test.cc runs each mapping through
// a naive column-major GEMM on the CPU and compares with the row-major definition.
//
// A row-major matrix X[r, c] with leading dimension ld is, seen column-major, Xᵀ[c, r] with
// the same ld. So row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, i.e. a cuBLAS
// call with the operands swapped, m and n swapped, and the same transpose flags.
#pragma once

#include <cstdint>
#include <string>

namespace paci {
namespace cuda {

enum class Trans { kN, kT };

// C[M,N] (row-major, ldc) = alpha·op(A)·op(B) + beta·C, batched with strides (elements).
struct RowMajorGemm {
  Trans ta = Trans::kN, tb = Trans::kN;
  int M = 0, N = 0, K = 0;
  int lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  int batch = 1;
};

// The arguments of cublasGemm(Strided)BatchedEx(handle, transa, transb, m, n, k, alpha,
// A, lda, strideA, B, ldb, strideB, beta, C, ldc, strideC, batch): `first` is the matrix passed
// as cuBLAS's A (the row-major B), `second` as cuBLAS's B (the row-major A).
struct ColumnMajorCall {
  Trans transa = Trans::kN, transb = Trans::kN;
  int m = 0, n = 0, k = 0;
  int lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  int batch = 1;
  bool operands_swapped = true;  // always: cuBLAS A = row-major B, cuBLAS B = row-major A
};

ColumnMajorCall to_column_major(const RowMajorGemm& g);

// Empty if the leading dimensions fit the shapes (row-major: op(A) is M×K, so A is M×K with
// lda ≥ K when kN, K×M with lda ≥ M when kT; likewise B; ldc ≥ N), else the reason.
std::string gemm_error(const RowMajorGemm& g);

// ---- the backend's GEMMs ----
// matmul_forward: out[N,OC] = in[N,IC] · w[OC,IC]ᵀ (+ bias, added by beta = 1 over a bias fill).
RowMajorGemm linear_forward_gemm(int N, int IC, int OC);
// matmul_backward_input: din[N,IC] += dout[N,OC] · w[OC,IC].
RowMajorGemm linear_backward_input_gemm(int N, int IC, int OC);
// matmul_backward_weight: dw[OC,IC] += dout[N,OC]ᵀ · in[N,IC].
RowMajorGemm linear_backward_weight_gemm(int N, int IC, int OC);

// Attention over head-major buffers q, k, v, o: [B·NH][T][hs] (batch stride T·hs); scores and
// probabilities [B·NH][T][T] (batch stride T·T).
RowMajorGemm attention_scores_gemm(int BNH, int T, int hs);   // S = q · kᵀ        [T,T]
RowMajorGemm attention_values_gemm(int BNH, int T, int hs);   // o = P · v         [T,hs]
RowMajorGemm attention_dvalues_gemm(int BNH, int T, int hs);  // dv = Pᵀ · do      [T,hs]
RowMajorGemm attention_dprobs_gemm(int BNH, int T, int hs);   // dP = do · vᵀ      [T,T]
RowMajorGemm attention_dquery_gemm(int BNH, int T, int hs);   // dq = dS · k       [T,hs]
RowMajorGemm attention_dkey_gemm(int BNH, int T, int hs);     // dk = dSᵀ · q      [T,hs]

}  // namespace cuda
}  // namespace paci
