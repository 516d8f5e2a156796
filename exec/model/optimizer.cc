#include "exec/model/optimizer.h"

#include <cmath>
#include <stdexcept>

namespace paci {

double lr_at(const AdamWConfig& cfg, int64_t step) {
  if (step < 0) throw std::invalid_argument("lr_at: step must be >= 0");
  if (step < cfg.warmup_steps) {
    return cfg.lr * static_cast<double>(step + 1) / static_cast<double>(cfg.warmup_steps);
  }
  if (cfg.total_steps <= cfg.warmup_steps) return cfg.lr;
  const double min_lr = cfg.lr * cfg.min_lr_fraction;
  if (step >= cfg.total_steps) return min_lr;
  const double progress = static_cast<double>(step - cfg.warmup_steps) /
                          static_cast<double>(cfg.total_steps - cfg.warmup_steps);
  const double coeff = 0.5 * (1.0 + std::cos(M_PI * progress));
  return min_lr + coeff * (cfg.lr - min_lr);
}

AdamW::AdamW(Backend& backend, const ParamLayout& layout, const AdamWConfig& cfg)
    : backend_(backend), layout_(layout), cfg_(cfg) {
  if (cfg.beta1 < 0 || cfg.beta1 >= 1 || cfg.beta2 < 0 || cfg.beta2 >= 1) {
    throw std::invalid_argument("AdamW: betas must be in [0, 1)");
  }
  if (cfg.warmup_steps < 0 || cfg.total_steps < 0) {
    throw std::invalid_argument("AdamW: warmup_steps and total_steps must be >= 0");
  }
  m_ = static_cast<float*>(backend_.alloc(layout_.total * sizeof(float)));
  v_ = static_cast<float*>(backend_.alloc(layout_.total * sizeof(float)));
}

AdamW::~AdamW() {
  backend_.free(m_);
  backend_.free(v_);
}

double AdamW::step(float* params, float* grads) {
  const double lr = lr_at(cfg_, t_);
  ++t_;
  const double b1_pow = std::pow(cfg_.beta1, static_cast<double>(t_));
  const double b2_pow = std::pow(cfg_.beta2, static_cast<double>(t_));
  // One call per tensor: weight decay differs between matrices and vectors. The alignment
  // gaps between tensors hold zeros and are skipped (they stay zero).
  for (const TensorInfo& t : layout_.tensors) {
    backend_.adamw_update(params + t.offset, grads + t.offset, m_ + t.offset, v_ + t.offset, t.size,
                          lr, cfg_.beta1, cfg_.beta2, b1_pow, b2_pow, cfg_.eps,
                          t.is_2d ? cfg_.weight_decay : 0.0);
  }
  return lr;
}

}  // namespace paci
