// The CUDA backend: BackendT<float> on one NVIDIA GPU, kernels for the elementwise and
// row-wise layers, GEMMs through cuBLAS (cublasGemmEx / cublasGemmStridedBatchedEx).
// This header has no CUDA includes, so host code compiled by gcc can use it.
//
// Design:
//  - One backend instance = one CUDA stream (created by the backend, non-blocking) + one cuBLAS
//    handle bound to it + a fixed cuBLAS workspace. A pipeline stage is a backend on its own
//    stream; operations of one instance run in order, different instances overlap. Calls are
//    asynchronous except to_host (waits for the copy), synchronize, alloc/free. An instance
//    is driven by one host thread at a time.
//  - Precision (CudaPrecision):
//      kFp32: GEMMs in plain fp32 (CUBLAS_COMPUTE_32F, no tensor-core rounding).
//      kTf32: GEMMs with fp32 storage, TF32 tensor-core inputs (CUBLAS_COMPUTE_32F_FAST_TF32).
//      kBf16: bf16 compute, fp32 master weights and optimizer state: every GEMM casts its two
//             inputs to bf16 in backend scratch (round to nearest even), multiplies on the
//             tensor cores with fp32 accumulation and fp32 output (C += in fp32, so gradient
//             accumulation stays fp32). The attention keeps its probabilities in bf16 (half
//             the memory: attention_state_elems is half the fp32 count) and feeds them to the
//             P·V and backward GEMMs directly. Non-GEMM kernels (LayerNorm, GELU, softmax,
//             AdamW, …) stay fp32 in every mode.
//  - Attention: q, k, v are permuted to head-major [B·NH, T, hs] scratch, S = q·kᵀ·scale by a
//    strided-batched GEMM, a warp-per-row causal softmax (masked entries written as 0), O = P·v
//    by another, then un-permuted. State kept: P, [B,NH,T,T] (fp32, or bf16 in kBf16 mode).
//    The backward recomputes the permutes and uses four more batched GEMMs.
//  - Determinism: every kernel reduction has a fixed split that depends on the shape only
//    (never on the SM count), no float atomics; embedding_backward sorts token positions
//    (stable radix sort) and adds in (b, t) order, which reproduces the CPU backend's bits.
//    cuBLAS gives the same bits for the same call on the same GPU/SM count with its atomics
//    disabled (we never enable them) and a fixed workspace. `deterministic = false` lets
//    embedding_backward use atomicAdd instead of the sort.
//  - Memory: cudaMalloc (no managed memory) through a per-instance pool: free() keeps the block
//    and alloc() of the same (256-byte rounded) size reuses it (host_pool.h), so a stage's
//    per-version buffers cost no cudaMalloc/cudaFree (cudaFree synchronizes the whole device)
//    after the first step; cached blocks go back to the driver when a cudaMalloc fails, on
//    release_cache() and in the destructor. Zero-filled on alloc. `memory()` reports the bytes
//    this instance holds now and at its peak (user buffers + cached blocks + scratch + cuBLAS
//    workspace) and the live user buffers' peak, for per-stage reporting.
//  - Uploads: from_host copies up to 32 MiB through page-locked staging slots (4, round robin)
//    and returns without waiting for the GPU; larger uploads are direct.
//  - Contexts: every operation (and the constructor/destructor) runs in the backend's context
//    (its green context, or the device's primary one), pushed for the call and popped after
//    when the calling thread had another current, so the caller's context is left as it was.
//    A worker thread that calls bind_thread() first pays nothing for this.
//  - Errors: every CUDA/cuBLAS call is checked and throws std::runtime_error naming the call,
//    file:line and the error string; kernel launches are checked with cudaGetLastError.
//    `debug_sync` synchronizes after every operation so that an asynchronous fault is
//    reported by the operation that caused it. Tokens/targets outside [0, V) are flagged by
//    the kernels (the output row becomes NaN) and reported as std::out_of_range at the next
//    to_host/synchronize.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "exec/model/backend.h"

namespace paci {

enum class CudaPrecision { kFp32, kTf32, kBf16 };
const char* precision_name(CudaPrecision p);
// "fp32" | "tf32" | "bf16"; throws std::invalid_argument otherwise.
CudaPrecision parse_precision(const std::string& s);

struct CudaBackendOptions {
  int device = 0;
  CudaPrecision precision = CudaPrecision::kFp32;
  bool deterministic = true;
  bool debug_sync = false;
  size_t cublas_workspace_bytes = 32u << 20;  // 32 MiB (cuBLAS's recommendation for Hopper)
  // Optional: run on a stream the caller owns; the backend then does not create or destroy
  // a stream. A cudaStream_t passed as void*.
  void* external_stream = nullptr;
  // Optional: a CUcontext (e.g. GreenContexts::context(s), green_context.h) made current while
  // the backend creates its stream, cuBLAS handle and buffers, so its kernels run on that
  // context's SMs only. See bind_thread().
  void* cu_context = nullptr;
};

struct CudaMemoryStats {
  size_t current_bytes = 0;  // held now by this instance (cudaMalloc'd)
  size_t peak_bytes = 0;     // high-water mark of current_bytes
  size_t user_bytes = 0;     // of current: buffers handed out by alloc()
  size_t scratch_bytes = 0;  // of current: backend scratch + cuBLAS workspace
  size_t allocations = 0;    // alloc() calls not yet freed
  size_t cached_bytes = 0;   // of current: freed blocks kept for reuse (the pool)
  size_t peak_user_bytes = 0;  // high-water mark of user_bytes (live buffers only)
};

struct CudaDeviceInfo {
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  size_t total_memory = 0;
  int runtime_version = 0, driver_version = 0;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& options = {});
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  // Number of CUDA devices; 0 if there is none or no driver (never throws).
  static int device_count();
  static CudaDeviceInfo device_info(int device);

  std::string name() const override;  // "cuda:<device>:<precision>"
  const CudaBackendOptions& options() const;
  CudaMemoryStats memory() const;
  void reset_peak();      // both peaks := their current values
  void release_cache();   // cudaFree the pool's cached blocks
  void* stream() const;  // the cudaStream_t
  // Makes this backend's device (and cu_context, if any) current for the calling thread and
  // leaves it so (a worker thread that drives this backend calls it once). Not needed for
  // correctness: every operation pushes the backend's context when another one is current
  // (and pops it after), so the constructor and calls from other threads leave the caller's
  // context as it was.
  void bind_thread() const override;

  void* alloc(size_t bytes) override;
  void free(void* p) override;
  void zero(void* p, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void to_host(void* host_dst, const void* src, size_t bytes) override;
  void from_host(void* dst, const void* host_src, size_t bytes) override;
  void synchronize() override;

  void matmul_forward(float* out, const float* in, const float* w, const float* bias, int N,
                      int IC, int OC) override;
  void matmul_backward_input(float* din, const float* dout, const float* w, int N, int IC,
                             int OC) override;
  void matmul_backward_weight(float* dw, float* dbias, const float* dout, const float* in, int N,
                              int IC, int OC) override;
  void layernorm_forward(float* out, float* mean, float* rstd, const float* in, const float* w,
                         const float* b, int N, int C) override;
  void layernorm_backward_input(float* din, const float* dout, const float* in, const float* w,
                                const float* mean, const float* rstd, int N, int C) override;
  void layernorm_backward_params(float* dw, float* db, const float* dout, const float* in,
                                 const float* mean, const float* rstd, int N, int C) override;
  size_t attention_state_elems(int B, int Tn, int C, int NH) const override;
  void attention_forward(float* out, float* att, const float* qkv, int B, int Tn, int C,
                         int NH) override;
  void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att,
                          int B, int Tn, int C, int NH) override;
  void gelu_forward(float* out, const float* in, size_t n) override;
  void gelu_backward(float* din, const float* in, const float* dout, size_t n) override;
  void residual_forward(float* out, const float* a, const float* b, size_t n) override;
  void residual_backward(float* da, float* db, const float* dout, size_t n) override;
  void accumulate(float* dst, const float* src, size_t n) override;
  void embedding_forward(float* out, const int* tokens, const float* wte, const float* wpe, int B,
                         int Tn, int C, int V) override;
  void embedding_backward(float* dwte, float* dwpe, const float* dout, const int* tokens, int B,
                          int Tn, int C) override;
  void softmax_xent_forward(float* losses, float* probs, const float* logits, const int* targets,
                            int N, int V) override;
  void softmax_xent_backward(float* dlogits, const float* probs, const int* targets, float dloss,
                             int N, int V) override;
  void adamw_update(float* params, float* grads, float* m, float* v, size_t n, double lr,
                    double beta1, double beta2, double beta1_pow, double beta2_pow, double eps,
                    double weight_decay) override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace paci
