// Launchers of the CUDA backend's kernels (kernels.cu, compiled by nvcc). Each enqueues on
// `stream` and returns the launch's error (cudaGetLastError), cudaErrorInvalidConfiguration
// if the launch configuration (launch_config.h) is not launchable, or cudaSuccess for an empty
// problem. The caller (cuda_backend.cc) checks the result with file:line.
//
// Element types: `float` everywhere except the `void*` operands of the bf16-capable kernels,
// which hold __nv_bfloat16 when `bf16` is true and float otherwise.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace paci {
namespace cuda {

// Error words the kernels set (device int[2]): [0] = 1 + row of the first token outside
// [0, V) seen by embedding_forward, [1] = 1 + row of the first target outside [0, V) seen by
// softmax_xent_forward; 0 = none.
constexpr int kErrToken = 0;
constexpr int kErrTarget = 1;
constexpr int kErrWords = 2;

cudaError_t launch_cast_to_bf16(void* dst, const float* src, size_t n, cudaStream_t s);
// out[n, o] = bias[o]
cudaError_t launch_fill_bias(float* out, const float* bias, int64_t N, int OC, cudaStream_t s);
// out[c] += Σ_n x[n, c]; partial: column_reduce_plan(N, C).partial_elems() floats.
cudaError_t launch_column_sum(float* out, const float* x, int64_t N, int C, float* partial,
                              cudaStream_t s);

cudaError_t launch_layernorm_forward(float* out, float* mean, float* rstd, const float* in,
                                     const float* w, const float* b, int64_t N, int C,
                                     cudaStream_t s);
cudaError_t launch_layernorm_backward_input(float* din, const float* dout, const float* in,
                                            const float* w, const float* mean, const float* rstd,
                                            int64_t N, int C, cudaStream_t s);
// partial: 2 · column_reduce_plan(N, C).partial_elems() floats.
cudaError_t launch_layernorm_backward_params(float* dw, float* db, const float* dout,
                                             const float* in, const float* mean,
                                             const float* rstd, int64_t N, int C, float* partial,
                                             cudaStream_t s);

cudaError_t launch_gelu_forward(float* out, const float* in, size_t n, cudaStream_t s);
cudaError_t launch_gelu_backward(float* din, const float* in, const float* dout, size_t n,
                                 cudaStream_t s);
cudaError_t launch_residual_forward(float* out, const float* a, const float* b, size_t n,
                                    cudaStream_t s);
cudaError_t launch_accumulate(float* dst, const float* src, size_t n, cudaStream_t s);

cudaError_t launch_embedding_forward(float* out, const int* tokens, const float* wte,
                                     const float* wpe, int B, int T, int C, int V, int* err,
                                     cudaStream_t s);
// Scratch bytes for the sorted (deterministic) embedding backward over N tokens.
size_t embedding_backward_scratch_bytes(int N);
// dwte/dwpe += ...; tokens must be < V (rows with tokens >= V or < 0 are skipped, and nothing is
// written at all if err[kErrToken] is set). sorted: stable radix sort + in-order sums (the CPU
// backend's bits); else atomicAdd for dwte (dwpe is always in order).
cudaError_t launch_embedding_backward(float* dwte, float* dwpe, const float* dout,
                                      const int* tokens, int B, int T, int C, int V,
                                      bool sorted, void* scratch, size_t scratch_bytes,
                                      const int* err, cudaStream_t s);

cudaError_t launch_softmax_xent_forward(float* losses, float* probs, const float* logits,
                                        const int* targets, int N, int V, int* err,
                                        cudaStream_t s);
cudaError_t launch_softmax_xent_backward(float* dlogits, const float* probs, const int* targets,
                                         float dloss, int N, int V, cudaStream_t s);

// c1 = 1/(1−β1^t), c2 = 1/(1−β2^t), computed by the caller in double.
cudaError_t launch_adamw(float* params, float* grads, float* m, float* v, size_t n,
                         float lr, float beta1, float beta2, float c1, float c2, float eps,
                         float weight_decay, cudaStream_t s);

// ---- attention helpers ----
// dst[(b·NH + h)·T + t][i] = src[(b·T + t)·src_stride + h·hs + i]   (hs = C/NH)
cudaError_t launch_to_heads(void* dst, bool bf16, const float* src, int64_t src_stride, int B,
                            int T, int C, int NH, cudaStream_t s);
// dst[(b·T + t)·dst_stride + h·hs + i] (= or +=) src[(b·NH + h)·T + t][i]
cudaError_t launch_from_heads(float* dst, int64_t dst_stride, const float* src, int B, int T,
                              int C, int NH, bool accumulate, cudaStream_t s);
// Causal softmax over rows of S [rows, T] (row r is query t = r mod T): P[j] = softmax(S[0..t])
// for j ≤ t, 0 for j > t. P (float or bf16) may alias S when float.
cudaError_t launch_causal_softmax(void* P, bool bf16, const float* S, int64_t rows, int T,
                                  cudaStream_t s);
// dS[j] = scale · P[j] · (dP[j] − Σ_{k≤t} P[k]·dP[k]) for j ≤ t, 0 above the diagonal.
// P and dS are bf16 when bf16, else float (dS may alias dP then).
cudaError_t launch_causal_softmax_backward(void* dS, const void* P, bool bf16, const float* dP,
                                           int64_t rows, int T, float scale, cudaStream_t s);

}  // namespace cuda
}  // namespace paci
