// The compute operations a GPT stage needs, over raw device buffers with integer shapes, so
// that a CPU (BLAS) and a CUDA (cuBLAS + kernels) implementation can stand behind one
// StageModel.
//
// Conventions (llm.c's):
//  - Activations are row-major; N = B·T rows. Shapes are given in comments as [rows, cols].
//  - Linear layers store W as [OC, IC] (out = in · Wᵀ + b).
//  - Every backward operation ACCUMULATES (+=) into its gradient outputs, so residual
//    fan-in and gradient accumulation over micro-batches need no extra code; callers zero
//    buffers where a fresh gradient is wanted. The one exception is
//    softmax_xent_backward, which writes (so it can work in place over the probabilities).
//  - Elementwise operations (residual, gelu, accumulate) allow an output to alias an input.
//  - Operations are deterministic: the same inputs give the same bits on every call.
//  - A backend object may be shared by several stages only if the implementation says so;
//    the CPU backend is stateless and can be.
#pragma once

#include <cstddef>
#include <string>

namespace paci {

template <typename T>
class BackendT {
 public:
  virtual ~BackendT() = default;
  virtual std::string name() const = 0;

  // ---- memory: byte counts; "device" pointers belong to this backend ----
  virtual void* alloc(size_t bytes) = 0;  // zero-filled, aligned to at least 64 bytes
  virtual void free(void* p) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // device to device
  virtual void to_host(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void from_host(void* dst, const void* host_src, size_t bytes) = 0;
  // Waits for queued work (a no-op on the CPU).
  virtual void synchronize() {}
  // True when buffers are plain host memory (the CPU backend), so a transport may read and
  // write them directly.
  virtual bool host_memory() const { return false; }
  // Prepares the calling thread to drive this backend (a GPU backend makes its device and
  // context current). The runtime calls it on the worker thread that runs a stage.
  virtual void bind_thread() const {}

  // ---- layers ----
  // out[N,OC] = in[N,IC] · w[OC,IC]ᵀ + bias[OC] (bias may be null).
  virtual void matmul_forward(T* out, const T* in, const T* w, const T* bias, int N, int IC,
                              int OC) = 0;
  // din[N,IC] += dout[N,OC] · w[OC,IC]  (the zero-bubble "I" part).
  virtual void matmul_backward_input(T* din, const T* dout, const T* w, int N, int IC, int OC) = 0;
  // dw[OC,IC] += dout[N,OC]ᵀ · in[N,IC]; dbias[OC] += Σ_n dout[n,:] (dbias may be null)
  // (the "W" part).
  virtual void matmul_backward_weight(T* dw, T* dbias, const T* dout, const T* in, int N, int IC,
                                      int OC) = 0;

  // out[N,C] = (in − mean)·rstd·w + b per row; saves mean[N], rstd[N] for the backward.
  virtual void layernorm_forward(T* out, T* mean, T* rstd, const T* in, const T* w, const T* b,
                                 int N, int C) = 0;
  // din[N,C] += ∂/∂in, from dout[N,C].
  virtual void layernorm_backward_input(T* din, const T* dout, const T* in, const T* w,
                                        const T* mean, const T* rstd, int N, int C) = 0;
  // dw[C] += Σ dout·x̂, db[C] += Σ dout.
  virtual void layernorm_backward_params(T* dw, T* db, const T* dout, const T* in, const T* mean,
                                         const T* rstd, int N, int C) = 0;

  // Causal multi-head self-attention. qkv[B,T,3C] holds q | k | v, head h in channels
  // [h·C/NH, (h+1)·C/NH) of each; out[B,T,C]. `att` is what the backend keeps for the
  // backward, attention_state_elems() elements: the CPU backend keeps the softmax
  // probabilities [B,NH,T,T]; a fused (flash) kernel may keep only row statistics.
  virtual size_t attention_state_elems(int B, int Tn, int C, int NH) const = 0;
  virtual void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH) = 0;
  // dqkv[B,T,3C] += ∂/∂qkv, from dout[B,T,C].
  virtual void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int Tn,
                                  int C, int NH) = 0;

  // GELU, tanh approximation, elementwise over n values.
  virtual void gelu_forward(T* out, const T* in, size_t n) = 0;
  virtual void gelu_backward(T* din, const T* in, const T* dout, size_t n) = 0;

  // out = a + b; and its backward da += dout, db += dout.
  virtual void residual_forward(T* out, const T* a, const T* b, size_t n) = 0;
  virtual void residual_backward(T* da, T* db, const T* dout, size_t n) = 0;
  // dst += src (also the gradient of a copy or of a residual with one side).
  virtual void accumulate(T* dst, const T* src, size_t n) = 0;

  // out[B,T,C] = wte[tokens[b,t], :] + wpe[t, :]; tokens is a device int buffer [B,T]
  // with values in [0, V) (checked where the backend can).
  virtual void embedding_forward(T* out, const int* tokens, const T* wte, const T* wpe, int B,
                                 int Tn, int C, int V) = 0;
  virtual void embedding_backward(T* dwte, T* dwpe, const T* dout, const int* tokens, int B, int Tn,
                                  int C) = 0;

  // Row-wise softmax of logits[N,V] into probs[N,V] (may alias logits) and
  // losses[n] = −log probs[n, targets[n]].
  virtual void softmax_xent_forward(T* losses, T* probs, const T* logits, const int* targets, int N,
                                    int V) = 0;
  // dlogits[N,V] = dloss · (probs − onehot(targets)), WRITTEN (may alias probs); dloss is
  // the gradient of the objective w.r.t. each token's loss (e.g. loss_scale / N for a mean).
  virtual void softmax_xent_backward(T* dlogits, const T* probs, const int* targets, T dloss, int N,
                                     int V) = 0;

  // AdamW over n values with bias correction (beta1_pow = β1^t, beta2_pow = β2^t):
  // m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
  // p −= lr·( m̂ / (√v̂ + eps) + weight_decay·p ); then g = 0 (the gradients are consumed:
  // the next step accumulates into zeros, with no separate zeroing pass).
  virtual void adamw_update(T* params, T* grads, T* m, T* v, size_t n, double lr,
                            double beta1, double beta2, double beta1_pow, double beta2_pow,
                            double eps, double weight_decay) = 0;
};

using Backend = BackendT<float>;

}  // namespace paci
