// AdamW against a hand computation, and the warm-up + cosine learning-rate schedule.
#include "exec/model/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "exec/model/cpu_backend.h"
#include "exec/model/stage_model.h"

namespace paci {
namespace {

// A 2×2 matrix (weight decay applies) and a 3-vector (it does not), with an alignment gap.
ParamLayout two_tensors() {
  ParamLayout layout;
  TensorInfo w;
  w.name = "w";
  w.offset = 0;
  w.size = 4;
  w.rows = w.cols = 2;
  w.is_2d = true;
  TensorInfo b;
  b.name = "b";
  b.offset = 16;
  b.size = 3;
  b.cols = 3;
  b.is_2d = false;
  layout.tensors = {w, b};
  layout.total = 32;
  return layout;
}

TEST(AdamWTest, OneStepByHand) {
  CpuBackend be;
  AdamWConfig cfg;
  cfg.lr = 0.1;
  cfg.beta1 = 0.9;
  cfg.beta2 = 0.95;
  cfg.eps = 1e-8;
  cfg.weight_decay = 0.1;
  const ParamLayout layout = two_tensors();
  AdamW opt(be, layout, cfg);
  std::vector<float> p(32, 0.0f), g(32, 0.0f);
  p[0] = 0.5f;
  g[0] = 0.2f;  // matrix element
  p[1] = -1.0f;
  g[1] = 0.0f;  // matrix element, zero gradient: only decay moves it
  p[16] = 0.5f;
  g[16] = -0.3f;  // vector element: no decay
  EXPECT_DOUBLE_EQ(opt.step(p.data(), g.data()), 0.1);
  // Step 1: m = 0.1·g, v = 0.05·g²; bias-corrected m̂ = g, v̂ = g², so the Adam direction is
  // g / (|g| + eps).
  // p[0] = 0.5 − 0.1·(0.2/(0.2+1e-8) + 0.1·0.5) = 0.395000005
  // p[1] = −1 − 0.1·(0/(0+1e-8) + 0.1·(−1)) = −0.99
  // p[16] = 0.5 − 0.1·(−0.3/(0.3+1e-8)) = 0.5999999967
  // Tolerance 1e-6: fp32 rounding of values ~1 is 6e-8 per operation.
  EXPECT_NEAR(p[0], 0.395000005, 1e-6);
  EXPECT_NEAR(p[1], -0.99, 1e-6);
  EXPECT_NEAR(p[16], 0.5999999967, 1e-6);
  // Moments: relative 1e-6 (fp32 1 − β rounds at ~1e-7 relative).
  EXPECT_NEAR(opt.m()[0], 0.02, 0.02 * 1e-6);
  EXPECT_NEAR(opt.v()[16], 0.05 * 0.09, 0.0045 * 1e-6);
  for (int i : {4, 8, 15, 19, 31}) EXPECT_EQ(p[i], 0.0f) << "alignment gap " << i;
  // The step consumes the gradients: every value is zero, ready for the next accumulation.
  for (int i = 0; i < 32; ++i) EXPECT_EQ(g[i], 0.0f) << "gradient " << i;

  // Step 2 against the textbook formula in double.
  const double g2 = -0.1;
  g[0] = static_cast<float>(g2);
  const double m = 0.9 * (0.1 * 0.2) + 0.1 * g2;
  const double v = 0.95 * (0.05 * 0.04) + 0.05 * g2 * g2;
  const double mhat = m / (1 - 0.9 * 0.9), vhat = v / (1 - 0.95 * 0.95);
  const double expected = p[0] - 0.1 * (mhat / (std::sqrt(vhat) + 1e-8) + 0.1 * p[0]);
  opt.step(p.data(), g.data());
  EXPECT_NEAR(p[0], expected, 1e-6);
  EXPECT_EQ(opt.steps_taken(), 2);
}

TEST(AdamWTest, LearningRateSchedule) {
  AdamWConfig cfg;
  cfg.lr = 1e-3;
  cfg.warmup_steps = 10;
  cfg.total_steps = 110;
  cfg.min_lr_fraction = 0.1;
  EXPECT_DOUBLE_EQ(lr_at(cfg, 0), 1e-4);  // warm-up start: lr/warmup
  EXPECT_DOUBLE_EQ(lr_at(cfg, 4), 5e-4);
  EXPECT_DOUBLE_EQ(lr_at(cfg, 9), 1e-3);   // warm-up end: peak
  EXPECT_DOUBLE_EQ(lr_at(cfg, 10), 1e-3);  // cosine start
  EXPECT_NEAR(lr_at(cfg, 35), 1e-4 + 0.5 * (1 + std::cos(M_PI / 4)) * 9e-4, 1e-15);
  EXPECT_NEAR(lr_at(cfg, 60), 5.5e-4, 1e-15);  // mid-cosine: halfway between peak and min
  EXPECT_NEAR(lr_at(cfg, 110), 1e-4, 1e-15);   // end: min = 10% of peak
  EXPECT_NEAR(lr_at(cfg, 5000), 1e-4, 1e-15);
  for (int s = 10; s < 110; ++s) EXPECT_GE(lr_at(cfg, s), lr_at(cfg, s + 1)) << s;
  AdamWConfig constant;
  constant.lr = 3e-4;
  EXPECT_DOUBLE_EQ(lr_at(constant, 0), 3e-4);
  EXPECT_DOUBLE_EQ(lr_at(constant, 1000), 3e-4);
  EXPECT_THROW(lr_at(cfg, -1), std::invalid_argument);
}

}  // namespace
}  // namespace paci

namespace paci {
namespace {

// End to end: the model, its gradients and AdamW together must be able to memorise one
// batch. Loss starts near ln(V) = 4.16 and, with correct gradients, falls far below it in a
// few dozen steps; a sign error or a broken update would leave it flat or make it diverge.
TEST(TrainingTest, OverfitsOneBatch) {
  GptConfig cfg;
  cfg.vocab_size = 64;
  cfg.padded_vocab = 64;
  cfg.seq_len = 16;
  cfg.layers = 2;
  cfg.channels = 32;
  cfg.heads = 4;
  CpuBackend be;
  const int B = 4, Tn = 16;
  for (const std::vector<int>& lps : {std::vector<int>{2}, std::vector<int>{1, 1}}) {
    const auto parts = partition_from_layers(cfg, lps);
    std::vector<std::unique_ptr<StageModel>> stages;
    std::vector<std::unique_ptr<AdamW>> opts;
    AdamWConfig ocfg;
    ocfg.lr = 1e-2;
    ocfg.weight_decay = 0.0;
    for (const auto& p : parts) {
      stages.push_back(std::make_unique<StageModel>(be, cfg, p, B, Tn, 1, 3));
      opts.push_back(std::make_unique<AdamW>(be, stages.back()->layout(), ocfg));
    }
    std::vector<int> tokens(B * Tn), targets(B * Tn);
    NormalStream rng(1, 1);
    for (int& t : tokens) t = static_cast<int>(rng.next_u64() % 64);
    for (int& t : targets) t = static_cast<int>(rng.next_u64() % 64);
    std::vector<float> x(stages[0]->boundary_elems()), dx(x.size());
    std::vector<float> losses;
    for (int step = 0; step < 40; ++step) {
      const int S = static_cast<int>(stages.size());
      float loss = 0;
      for (int s = 0; s < S; ++s) {
        StageModel& m = *stages[s];
        loss = m.forward(0, m.params(), tokens.data(), s > 0 ? x.data() : nullptr, targets.data(),
                         s + 1 < S ? x.data() : nullptr);
      }
      for (int s = S - 1; s >= 0; --s) {
        StageModel& m = *stages[s];
        m.backward(0, m.params(), s + 1 < S ? dx.data() : nullptr, s > 0 ? dx.data() : nullptr,
                   1.0f);
      }
      for (int s = 0; s < S; ++s) {
        // No zero_grad(): the step leaves the gradients zero (were it not so, they would
        // accumulate across steps and the loss would not fall).
        opts[s]->step(stages[s]->params(), stages[s]->grads());
      }
      losses.push_back(loss);
    }
    EXPECT_NEAR(losses.front(), std::log(64.0), 0.1);
    EXPECT_LT(losses.back(), 0.5) << "after 40 steps; first " << losses.front();
  }
}

}  // namespace
}  // namespace paci
