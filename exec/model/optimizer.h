// AdamW with linear warm-up and cosine decay, over one stage's flat parameter buffer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "exec/model/backend.h"
#include "exec/model/param_layout.h"

namespace paci {

struct AdamWConfig {
  double lr = 3e-4;  // peak learning rate
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // only on tensors with is_2d (matrices, embeddings)
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;       // cosine ends here; 0 means constant lr after warm-up
  double min_lr_fraction = 0.1;  // final lr = lr · min_lr_fraction
};

// Learning rate of optimizer step `step` (0-based): lr·(step+1)/warmup_steps during
// warm-up (so step 0 is not a wasted zero-lr step and step warmup-1 reaches the peak), then
// cosine from lr down to lr·min_lr_fraction at step total_steps, constant after that.
double lr_at(const AdamWConfig& cfg, int64_t step);

// AdamW state (m, v, step count t) for one stage; m and v live in the backend's memory.
// Deterministic: the update is elementwise.
class AdamW {
 public:
  AdamW(Backend& backend, const ParamLayout& layout, const AdamWConfig& cfg);
  ~AdamW();
  AdamW(const AdamW&) = delete;
  AdamW& operator=(const AdamW&) = delete;

  // One update of params from grads with lr_at(config, t); then t += 1. Returns the lr used.
  // Leaves grads zero (each value is cleared as the update reads it), ready to accumulate
  // the next step: no zero_grad() is needed after it.
  double step(float* params, float* grads);

  int64_t steps_taken() const { return t_; }
  void set_steps_taken(int64_t t) { t_ = t; }  // for resuming from a checkpoint
  float* m() { return m_; }
  float* v() { return v_; }
  size_t size() const { return layout_.total; }
  const AdamWConfig& config() const { return cfg_; }

 private:
  Backend& backend_;
  ParamLayout layout_;
  AdamWConfig cfg_;
  float* m_ = nullptr;
  float* v_ = nullptr;
  int64_t t_ = 0;
};

}  // namespace paci
