// The CPU backend: fp32 (or double, for tests) with GEMMs through OpenBLAS.
#pragma once

#include "exec/model/backend.h"

namespace paci {

struct CpuBackendOptions {
  // Threads per operation (GEMM tiles, attention heads, rows of the other kernels); 0: the
  // BLAS library's default count. Default 1: pipeline stages already run in parallel
  // threads. The results do not depend on it: GEMMs are cut into a fixed grid of tiles,
  // each one single-threaded BLAS call, and kernels split only over independent rows or
  // heads (see cpu_kernels.h). OpenBLAS itself is always set to one thread.
  int blas_threads = 1;
};

// Stateless apart from the option above: one instance may serve several stages, also from
// several threads at once (every operation only touches the buffers it is given).
template <typename T>
class CpuBackendT : public BackendT<T> {
 public:
  explicit CpuBackendT(const CpuBackendOptions& options = {});
  std::string name() const override { return "cpu"; }
  bool host_memory() const override { return true; }

  void* alloc(size_t bytes) override;
  void free(void* p) override;
  void zero(void* p, size_t bytes) override;
  void copy(void* dst, const void* src, size_t bytes) override;
  void to_host(void* host_dst, const void* src, size_t bytes) override;
  void from_host(void* dst, const void* host_src, size_t bytes) override;

  void matmul_forward(T* out, const T* in, const T* w, const T* bias, int N, int IC,
                      int OC) override;
  void matmul_backward_input(T* din, const T* dout, const T* w, int N, int IC, int OC) override;
  void matmul_backward_weight(T* dw, T* dbias, const T* dout, const T* in, int N, int IC,
                              int OC) override;
  void layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* w, const T* b, int N,
                         int C) override;
  void layernorm_backward_input(T* din, const T* dout, const T* in, const T* w, const T* mean,
                                const T* rstd, int N, int C) override;
  void layernorm_backward_params(T* dw, T* db, const T* dout, const T* in, const T* mean,
                                 const T* rstd, int N, int C) override;
  // [B,NH,T,T] softmax probabilities.
  size_t attention_state_elems(int B, int Tn, int /*C*/, int NH) const override {
    return static_cast<size_t>(B) * NH * Tn * Tn;
  }
  void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH) override;
  void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int Tn, int C,
                          int NH) override;
  void gelu_forward(T* out, const T* in, size_t n) override;
  void gelu_backward(T* din, const T* in, const T* dout, size_t n) override;
  void residual_forward(T* out, const T* a, const T* b, size_t n) override;
  void residual_backward(T* da, T* db, const T* dout, size_t n) override;
  void accumulate(T* dst, const T* src, size_t n) override;
  void embedding_forward(T* out, const int* tokens, const T* wte, const T* wpe, int B, int Tn,
                         int C, int V) override;
  void embedding_backward(T* dwte, T* dwpe, const T* dout, const int* tokens, int B, int Tn,
                          int C) override;
  void softmax_xent_forward(T* losses, T* probs, const T* logits, const int* targets, int N,
                            int V) override;
  void softmax_xent_backward(T* dlogits, const T* probs, const int* targets, T dloss, int N,
                             int V) override;
  void adamw_update(T* params, T* grads, T* m, T* v, size_t n, double lr, double beta1,
                    double beta2, double beta1_pow, double beta2_pow, double eps,
                    double weight_decay) override;

 private:
  int threads_ = 1;  // for the kernels outside BLAS
};

using CpuBackend = CpuBackendT<float>;

}  // namespace paci
