// Measured memory: a backend that counts every allocation of the backend it wraps.
//
// The runtime gives each stage a MeteredBackend over its real backend, so everything a stage
// allocates (weights, gradients, AdamW state, activation slots, scratch, message buffers,
// stashed weight copies, kept inputs) is counted where it is allocated, not derived from the
// byte counts the simulator also uses. A MemoryMeter may be shared (every stage of one
// device reports to the device's meter), so peaks are measured per stage and per device.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <unordered_map>

#include "exec/model/backend.h"

namespace paci {

// Live and peak bytes; thread-safe.
class MemoryMeter {
 public:
  void add(size_t bytes) {
    allocations_.fetch_add(1);
    const size_t now = live_.fetch_add(bytes) + bytes;
    size_t peak = peak_.load();
    while (now > peak && !peak_.compare_exchange_weak(peak, now)) {
    }
  }
  void sub(size_t bytes) { live_.fetch_sub(bytes); }
  size_t live() const { return live_.load(); }
  size_t peak() const { return peak_.load(); }
  size_t allocations() const { return allocations_.load(); }  // calls to add

 private:
  std::atomic<size_t> live_{0}, peak_{0}, allocations_{0};
};

// Forwards every operation to `inner`; alloc and free also count the bytes asked for on
// each of the meters given (null ones are skipped).
class MeteredBackend : public Backend {
 public:
  MeteredBackend(Backend& inner, MemoryMeter* stage, MemoryMeter* device = nullptr)
      : inner_(inner), meters_{stage, device} {}
  MeteredBackend(const MeteredBackend&) = delete;
  MeteredBackend& operator=(const MeteredBackend&) = delete;

  std::string name() const override { return inner_.name(); }
  bool host_memory() const override { return inner_.host_memory(); }
  void synchronize() override { inner_.synchronize(); }
  void bind_thread() const override { inner_.bind_thread(); }

  void* alloc(size_t bytes) override {
    void* p = inner_.alloc(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      sizes_[p] = bytes;
    }
    for (MemoryMeter* m : meters_)
      if (m) m->add(bytes);
    return p;
  }
  void free(void* p) override {
    if (!p) return;
    size_t bytes = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = sizes_.find(p);
      if (it != sizes_.end()) bytes = it->second, sizes_.erase(it);
    }
    for (MemoryMeter* m : meters_)
      if (m) m->sub(bytes);
    inner_.free(p);
  }
  void zero(void* p, size_t bytes) override { inner_.zero(p, bytes); }
  void copy(void* dst, const void* src, size_t bytes) override { inner_.copy(dst, src, bytes); }
  void to_host(void* dst, const void* src, size_t bytes) override { inner_.to_host(dst, src, bytes); }
  void from_host(void* dst, const void* src, size_t bytes) override { inner_.from_host(dst, src, bytes); }

  void matmul_forward(float* out, const float* in, const float* w, const float* bias, int N, int IC,
                      int OC) override {
    inner_.matmul_forward(out, in, w, bias, N, IC, OC);
  }
  void matmul_backward_input(float* din, const float* dout, const float* w, int N, int IC, int OC) override {
    inner_.matmul_backward_input(din, dout, w, N, IC, OC);
  }
  void matmul_backward_weight(float* dw, float* dbias, const float* dout, const float* in, int N, int IC,
                              int OC) override {
    inner_.matmul_backward_weight(dw, dbias, dout, in, N, IC, OC);
  }
  void layernorm_forward(float* out, float* mean, float* rstd, const float* in, const float* w, const float* b,
                         int N, int C) override {
    inner_.layernorm_forward(out, mean, rstd, in, w, b, N, C);
  }
  void layernorm_backward_input(float* din, const float* dout, const float* in, const float* w, const float* mean,
                                const float* rstd, int N, int C) override {
    inner_.layernorm_backward_input(din, dout, in, w, mean, rstd, N, C);
  }
  void layernorm_backward_params(float* dw, float* db, const float* dout, const float* in, const float* mean,
                                 const float* rstd, int N, int C) override {
    inner_.layernorm_backward_params(dw, db, dout, in, mean, rstd, N, C);
  }
  size_t attention_state_elems(int B, int Tn, int C, int NH) const override {
    return inner_.attention_state_elems(B, Tn, C, NH);
  }
  void attention_forward(float* out, float* att, const float* qkv, int B, int Tn, int C, int NH) override {
    inner_.attention_forward(out, att, qkv, B, Tn, C, NH);
  }
  void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att, int B, int Tn, int C,
                          int NH) override {
    inner_.attention_backward(dqkv, dout, qkv, att, B, Tn, C, NH);
  }
  void gelu_forward(float* out, const float* in, size_t n) override { inner_.gelu_forward(out, in, n); }
  void gelu_backward(float* din, const float* in, const float* dout, size_t n) override {
    inner_.gelu_backward(din, in, dout, n);
  }
  void residual_forward(float* out, const float* a, const float* b, size_t n) override {
    inner_.residual_forward(out, a, b, n);
  }
  void residual_backward(float* da, float* db, const float* dout, size_t n) override {
    inner_.residual_backward(da, db, dout, n);
  }
  void accumulate(float* dst, const float* src, size_t n) override { inner_.accumulate(dst, src, n); }
  void embedding_forward(float* out, const int* tokens, const float* wte, const float* wpe, int B, int Tn, int C,
                         int V) override {
    inner_.embedding_forward(out, tokens, wte, wpe, B, Tn, C, V);
  }
  void embedding_backward(float* dwte, float* dwpe, const float* dout, const int* tokens, int B, int Tn,
                          int C) override {
    inner_.embedding_backward(dwte, dwpe, dout, tokens, B, Tn, C);
  }
  void softmax_xent_forward(float* losses, float* probs, const float* logits, const int* targets, int N,
                            int V) override {
    inner_.softmax_xent_forward(losses, probs, logits, targets, N, V);
  }
  void softmax_xent_backward(float* dlogits, const float* probs, const int* targets, float dloss, int N,
                             int V) override {
    inner_.softmax_xent_backward(dlogits, probs, targets, dloss, N, V);
  }
  void adamw_update(float* params, float* grads, float* m, float* v, size_t n, double lr, double beta1,
                    double beta2, double beta1_pow, double beta2_pow, double eps, double weight_decay) override {
    inner_.adamw_update(params, grads, m, v, n, lr, beta1, beta2, beta1_pow, beta2_pow, eps, weight_decay);
  }

  Backend& inner() { return inner_; }

 private:
  Backend& inner_;
  MemoryMeter* meters_[2];
  std::mutex mu_;
  std::unordered_map<void*, size_t> sizes_;
};

}  // namespace paci
