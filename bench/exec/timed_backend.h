// A Backend that forwards every operation to another one and adds up the wall time spent in
// each kind of operation, for the per-kernel breakdown of a training step. The matmul
// operations also count their FLOPs, so the in-model GEMM rate can be set beside an
// isolated sgemm.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string>

#include "exec/model/backend.h"

namespace paci {
namespace bench {

enum class Op {
  kMatmulForward,
  kMatmulBackwardInput,
  kMatmulBackwardWeight,
  kAttentionForward,
  kAttentionBackward,
  kSoftmaxXentForward,
  kSoftmaxXentBackward,
  kLayerNormForward,
  kLayerNormBackwardInput,
  kLayerNormBackwardParams,
  kGeluForward,
  kGeluBackward,
  kResidualAccumulate,  // residual_forward/backward, accumulate
  kEmbedding,           // forward and backward
  kAdamW,
  kMemory,  // zero, copy, to/from host
  kCount
};

inline const char* op_name(Op op) {
  static const char* names[] = {"matmul_forward",
                                "matmul_backward_input",
                                "matmul_backward_weight",
                                "attention_forward",
                                "attention_backward",
                                "softmax_xent_forward",
                                "softmax_xent_backward",
                                "layernorm_forward",
                                "layernorm_backward_input",
                                "layernorm_backward_params",
                                "gelu_forward",
                                "gelu_backward",
                                "residual/accumulate",
                                "embedding",
                                "adamw",
                                "zero/copy"};
  return names[static_cast<int>(op)];
}

constexpr int kNumOps = static_cast<int>(Op::kCount);

class TimedBackend final : public Backend {
 public:
  explicit TimedBackend(Backend& inner) : in_(inner) {}

  void reset() {
    seconds_.fill(0.0);
    gemm_flops_ = 0.0;
  }
  double seconds(Op op) const { return seconds_[static_cast<int>(op)]; }
  double total_seconds() const {
    double s = 0;
    for (double x : seconds_) s += x;
    return s;
  }
  double gemm_seconds() const {
    return seconds(Op::kMatmulForward) + seconds(Op::kMatmulBackwardInput) +
           seconds(Op::kMatmulBackwardWeight);
  }
  double gemm_flops() const { return gemm_flops_; }

  std::string name() const override { return "timed(" + in_.name() + ")"; }
  void* alloc(size_t bytes) override { return in_.alloc(bytes); }
  void free(void* p) override { in_.free(p); }
  void zero(void* p, size_t bytes) override {
    Timer t(this, Op::kMemory);
    in_.zero(p, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    Timer t(this, Op::kMemory);
    in_.copy(dst, src, bytes);
  }
  void to_host(void* dst, const void* src, size_t bytes) override {
    Timer t(this, Op::kMemory);
    in_.to_host(dst, src, bytes);
  }
  void from_host(void* dst, const void* src, size_t bytes) override {
    Timer t(this, Op::kMemory);
    in_.from_host(dst, src, bytes);
  }

  void matmul_forward(float* out, const float* in, const float* w, const float* bias, int N, int IC,
                      int OC) override {
    gemm_flops_ += 2.0 * N * IC * OC;
    Timer t(this, Op::kMatmulForward);
    in_.matmul_forward(out, in, w, bias, N, IC, OC);
  }
  void matmul_backward_input(float* din, const float* dout, const float* w, int N, int IC,
                             int OC) override {
    gemm_flops_ += 2.0 * N * IC * OC;
    Timer t(this, Op::kMatmulBackwardInput);
    in_.matmul_backward_input(din, dout, w, N, IC, OC);
  }
  void matmul_backward_weight(float* dw, float* dbias, const float* dout, const float* in, int N,
                              int IC, int OC) override {
    gemm_flops_ += 2.0 * N * IC * OC;
    Timer t(this, Op::kMatmulBackwardWeight);
    in_.matmul_backward_weight(dw, dbias, dout, in, N, IC, OC);
  }
  void layernorm_forward(float* out, float* mean, float* rstd, const float* in, const float* w,
                         const float* b, int N, int C) override {
    Timer t(this, Op::kLayerNormForward);
    in_.layernorm_forward(out, mean, rstd, in, w, b, N, C);
  }
  void layernorm_backward_input(float* din, const float* dout, const float* in, const float* w,
                                const float* mean, const float* rstd, int N, int C) override {
    Timer t(this, Op::kLayerNormBackwardInput);
    in_.layernorm_backward_input(din, dout, in, w, mean, rstd, N, C);
  }
  void layernorm_backward_params(float* dw, float* db, const float* dout, const float* in,
                                 const float* mean, const float* rstd, int N, int C) override {
    Timer t(this, Op::kLayerNormBackwardParams);
    in_.layernorm_backward_params(dw, db, dout, in, mean, rstd, N, C);
  }
  size_t attention_state_elems(int B, int Tn, int C, int NH) const override {
    return in_.attention_state_elems(B, Tn, C, NH);
  }
  void attention_forward(float* out, float* att, const float* qkv, int B, int Tn, int C,
                         int NH) override {
    Timer t(this, Op::kAttentionForward);
    in_.attention_forward(out, att, qkv, B, Tn, C, NH);
  }
  void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att, int B,
                          int Tn, int C, int NH) override {
    Timer t(this, Op::kAttentionBackward);
    in_.attention_backward(dqkv, dout, qkv, att, B, Tn, C, NH);
  }
  void gelu_forward(float* out, const float* in, size_t n) override {
    Timer t(this, Op::kGeluForward);
    in_.gelu_forward(out, in, n);
  }
  void gelu_backward(float* din, const float* in, const float* dout, size_t n) override {
    Timer t(this, Op::kGeluBackward);
    in_.gelu_backward(din, in, dout, n);
  }
  void residual_forward(float* out, const float* a, const float* b, size_t n) override {
    Timer t(this, Op::kResidualAccumulate);
    in_.residual_forward(out, a, b, n);
  }
  void residual_backward(float* da, float* db, const float* dout, size_t n) override {
    Timer t(this, Op::kResidualAccumulate);
    in_.residual_backward(da, db, dout, n);
  }
  void accumulate(float* dst, const float* src, size_t n) override {
    Timer t(this, Op::kResidualAccumulate);
    in_.accumulate(dst, src, n);
  }
  void embedding_forward(float* out, const int* tokens, const float* wte, const float* wpe, int B,
                         int Tn, int C, int V) override {
    Timer t(this, Op::kEmbedding);
    in_.embedding_forward(out, tokens, wte, wpe, B, Tn, C, V);
  }
  void embedding_backward(float* dwte, float* dwpe, const float* dout, const int* tokens, int B,
                          int Tn, int C) override {
    Timer t(this, Op::kEmbedding);
    in_.embedding_backward(dwte, dwpe, dout, tokens, B, Tn, C);
  }
  void softmax_xent_forward(float* losses, float* probs, const float* logits, const int* targets,
                            int N, int V) override {
    Timer t(this, Op::kSoftmaxXentForward);
    in_.softmax_xent_forward(losses, probs, logits, targets, N, V);
  }
  void softmax_xent_backward(float* dlogits, const float* probs, const int* targets, float dloss,
                             int N, int V) override {
    Timer t(this, Op::kSoftmaxXentBackward);
    in_.softmax_xent_backward(dlogits, probs, targets, dloss, N, V);
  }
  void adamw_update(float* params, float* grads, float* m, float* v, size_t n, double lr,
                    double beta1, double beta2, double beta1_pow, double beta2_pow, double eps,
                    double weight_decay) override {
    Timer t(this, Op::kAdamW);
    in_.adamw_update(params, grads, m, v, n, lr, beta1, beta2, beta1_pow, beta2_pow, eps,
                     weight_decay);
  }

 private:
  struct Timer {
    using Clock = std::chrono::steady_clock;
    Timer(TimedBackend* b, Op op) : be(b), op(op), start(Clock::now()) {}
    ~Timer() {
      be->seconds_[static_cast<int>(op)] +=
          std::chrono::duration<double>(Clock::now() - start).count();
    }
    TimedBackend* be;
    Op op;
    Clock::time_point start;
  };

  Backend& in_;
  std::array<double, kNumOps> seconds_{};
  double gemm_flops_ = 0.0;
};

}  // namespace bench
}  // namespace paci
