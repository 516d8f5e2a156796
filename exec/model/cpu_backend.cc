#include "exec/model/cpu_backend.h"

#include <cblas.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "exec/model/cpu_kernels.h"

namespace paci {

template <typename T>
CpuBackendT<T>::CpuBackendT(const CpuBackendOptions& options) {
  // The first backend reads OpenBLAS's default (OPENBLAS_NUM_THREADS, else the cores) for
  // blas_threads = 0; every GEMM is then cut into tiles by gemm() and BLAS runs each on one
  // thread, so its own threading can never change a result.
  static const int blas_default = openblas_get_num_threads();
  threads_ = options.blas_threads > 0 ? options.blas_threads : blas_default;
  openblas_set_num_threads(1);
}

template <typename T>
void* CpuBackendT<T>::alloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded == 0 ? 64 : rounded);
  return p;
}
template <typename T>
void CpuBackendT<T>::free(void* p) {
  std::free(p);
}
template <typename T>
void CpuBackendT<T>::zero(void* p, size_t bytes) {
  if (bytes) std::memset(p, 0, bytes);
}
template <typename T>
void CpuBackendT<T>::copy(void* dst, const void* src, size_t bytes) {
  if (bytes && dst != src) std::memmove(dst, src, bytes);
}
template <typename T>
void CpuBackendT<T>::to_host(void* host_dst, const void* src, size_t bytes) {
  copy(host_dst, src, bytes);
}
template <typename T>
void CpuBackendT<T>::from_host(void* dst, const void* host_src, size_t bytes) {
  copy(dst, host_src, bytes);
}

template <typename T>
void CpuBackendT<T>::matmul_forward(T* out, const T* in, const T* w, const T* bias, int N, int IC,
                                    int OC) {
  cpu::matmul_forward(out, in, w, bias, N, IC, OC, threads_);
}
template <typename T>
void CpuBackendT<T>::matmul_backward_input(T* din, const T* dout, const T* w, int N, int IC,
                                           int OC) {
  cpu::matmul_backward_input(din, dout, w, N, IC, OC, threads_);
}
template <typename T>
void CpuBackendT<T>::matmul_backward_weight(T* dw, T* dbias, const T* dout, const T* in, int N,
                                            int IC, int OC) {
  cpu::matmul_backward_weight(dw, dbias, dout, in, N, IC, OC, threads_);
}
template <typename T>
void CpuBackendT<T>::layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* w,
                                       const T* b, int N, int C) {
  cpu::layernorm_forward(out, mean, rstd, in, w, b, N, C, threads_);
}
template <typename T>
void CpuBackendT<T>::layernorm_backward_input(T* din, const T* dout, const T* in, const T* w,
                                              const T* mean, const T* rstd, int N, int C) {
  cpu::layernorm_backward_input(din, dout, in, w, mean, rstd, N, C, threads_);
}
template <typename T>
void CpuBackendT<T>::layernorm_backward_params(T* dw, T* db, const T* dout, const T* in,
                                               const T* mean, const T* rstd, int N, int C) {
  cpu::layernorm_backward_params(dw, db, dout, in, mean, rstd, N, C, threads_);
}
template <typename T>
void CpuBackendT<T>::attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH) {
  cpu::attention_forward(out, att, qkv, B, Tn, C, NH, threads_);
}
template <typename T>
void CpuBackendT<T>::attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B,
                                        int Tn, int C, int NH) {
  cpu::attention_backward(dqkv, dout, qkv, att, B, Tn, C, NH, threads_);
}
template <typename T>
void CpuBackendT<T>::gelu_forward(T* out, const T* in, size_t n) {
  cpu::gelu_forward(out, in, n, threads_);
}
template <typename T>
void CpuBackendT<T>::gelu_backward(T* din, const T* in, const T* dout, size_t n) {
  cpu::gelu_backward(din, in, dout, n, threads_);
}
template <typename T>
void CpuBackendT<T>::residual_forward(T* out, const T* a, const T* b, size_t n) {
  cpu::residual_forward(out, a, b, n, threads_);
}
template <typename T>
void CpuBackendT<T>::residual_backward(T* da, T* db, const T* dout, size_t n) {
  cpu::residual_backward(da, db, dout, n, threads_);
}
template <typename T>
void CpuBackendT<T>::accumulate(T* dst, const T* src, size_t n) {
  cpu::accumulate(dst, src, n, threads_);
}
template <typename T>
void CpuBackendT<T>::embedding_forward(T* out, const int* tokens, const T* wte, const T* wpe, int B,
                                       int Tn, int C, int V) {
  cpu::embedding_forward(out, tokens, wte, wpe, B, Tn, C, V);
}
template <typename T>
void CpuBackendT<T>::embedding_backward(T* dwte, T* dwpe, const T* dout, const int* tokens, int B,
                                        int Tn, int C) {
  cpu::embedding_backward(dwte, dwpe, dout, tokens, B, Tn, C);
}
template <typename T>
void CpuBackendT<T>::softmax_xent_forward(T* losses, T* probs, const T* logits, const int* targets,
                                          int N, int V) {
  cpu::softmax_xent_forward(losses, probs, logits, targets, N, V, threads_);
}
template <typename T>
void CpuBackendT<T>::softmax_xent_backward(T* dlogits, const T* probs, const int* targets, T dloss,
                                           int N, int V) {
  cpu::softmax_xent_backward(dlogits, probs, targets, dloss, N, V, threads_);
}
template <typename T>
void CpuBackendT<T>::adamw_update(T* params, T* grads, T* m, T* v, size_t n, double lr,
                                  double beta1, double beta2, double beta1_pow, double beta2_pow,
                                  double eps, double weight_decay) {
  cpu::adamw_update(params, grads, m, v, n, lr, beta1, beta2, beta1_pow, beta2_pow, eps,
                    weight_decay, threads_);
}

template class CpuBackendT<float>;
template class CpuBackendT<double>;

}  // namespace paci
