// Whole-model gradient check in double: a 2-layer GPT, the mean loss of two micro-batches
// (two activation slots, loss_scale 1/2), analytic gradients of every tensor against
// central differences on a sample of elements, with one stage and with two stages (so the
// gradient of stage 0's tensors crosses the stage boundary through x_out / dx_in).
//
// Tolerance |a − fd| <= 1e-9 + 1e-5·max(|a|, |fd|), at h = 1e-5: the loss (~3) is a
// composition of ~30 smooth layers, so the truncation error h²·|L'''| stays below ~1e-9 and
// round-off ~1e-16·3/1e-5 ≈ 3e-11; sampled gradients are 1e-4..1e-1, so a real error (a
// missing residual term, a dropped accumulation) shows up many orders above this.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "exec/model/stage_model.h"
#include "tests/model/grad_check.h"
#include "tests/model/pipeline_util.h"

namespace paci {
namespace {

using testing::random_tokens;
using testing::TestPipeline;

GptConfig small_config(bool tied) {
  GptConfig cfg;
  cfg.vocab_size = 23;
  cfg.padded_vocab = 32;
  cfg.seq_len = 8;
  cfg.layers = 2;
  cfg.channels = 8;
  cfg.heads = 2;
  cfg.tied_embeddings = tied;
  return cfg;
}

void run_parts_grad_check(const GptConfig& cfg, const std::vector<StagePartition>& parts) {
  const int B = 2, Tn = 6;  // Tn < seq_len: a micro-batch shorter than the context
  TestPipeline<double> pipe(cfg, parts, B, Tn,
                            /*slots=*/2, /*seed=*/7);
  // Move away from GPT-2's init (tiny weights, unit LayerNorm, zero biases), where many
  // second-order effects vanish and a wrong gradient could still pass. A tied lm_head gets
  // wte's perturbation so the copies stay equal.
  for (int s = 0; s < pipe.size(); ++s) {
    StageModelT<double>& m = pipe.stage(s);
    for (const TensorInfo& t : m.layout().tensors) {
      NormalStream rng(99, t.tied_to_wte ? 0 : t.global_id);
      for (size_t i = 0; i < t.size; ++i) m.params()[t.offset + i] += 0.2 * rng.next();
    }
  }
  const auto tok0 = random_tokens(B * Tn, cfg.vocab_size, 1);
  const auto tgt0 = random_tokens(B * Tn, cfg.vocab_size, 2);
  const auto tok1 = random_tokens(B * Tn, cfg.vocab_size, 3);
  const auto tgt1 = random_tokens(B * Tn, cfg.vocab_size, 4);

  auto loss = [&] {
    const double l0 = pipe.forward(0, tok0, tgt0);
    const double l1 = pipe.forward(1, tok1, tgt1);
    pipe.release(0);
    pipe.release(1);
    return 0.5 * (l0 + l1);
  };

  pipe.zero_grad();
  const double l0 = pipe.forward(0, tok0, tgt0);
  const double l1 = pipe.forward(1, tok1, tgt1);
  EXPECT_TRUE(std::isfinite(l0) && std::isfinite(l1));
  pipe.backward(1, 0.5);  // out of order on purpose: slots are independent
  pipe.backward(0, 0.5);
  if (cfg.tied_embeddings) pipe.sum_tied();

  const auto all = pipe.tensors();
  ASSERT_EQ(all.size(), 2u + 12u * cfg.layers + 3u);
  NormalStream pick(5, 5);
  for (const auto& [name, where] : all) {
    const auto& [s, t] = where;
    StageModelT<double>& m = pipe.stage(s);
    // A tied wte is one parameter stored twice: perturb both copies.
    double* twin = nullptr;
    if (cfg.tied_embeddings && (name == "wte" || name == "lm_head")) {
      const auto& other = all.at(name == "wte" ? "lm_head" : "wte");
      twin = pipe.stage(other.first).params() + other.second.offset;
    }
    std::vector<size_t> idx = {0, t.size - 1};
    while (idx.size() < 8) idx.push_back(pick.next_u64() % t.size);
    int failures = 0;
    double max_err = 0;
    for (size_t i : idx) {
      double* p = m.params() + t.offset + i;
      const double saved = *p;
      auto set = [&](double v) {
        *p = v;
        if (twin) twin[i] = v;
      };
      const double h = 1e-5;
      set(saved + h);
      const double up = loss();
      set(saved - h);
      const double down = loss();
      set(saved);
      const double fd = (up - down) / (2 * h);
      const double a = m.grads()[t.offset + i];
      const double err = std::fabs(a - fd);
      max_err = std::max(max_err, err);
      if (err > 1e-9 + 1e-5 * std::max(std::fabs(a), std::fabs(fd))) {
        ++failures;
        ADD_FAILURE() << name << "[" << i << "] (stage " << s << "): analytic " << a
                      << " vs finite difference " << fd;
      }
    }
    EXPECT_EQ(failures, 0) << name << ": max |diff| " << max_err;
  }
}

void run_model_grad_check(const GptConfig& cfg, const std::vector<int>& layers_per_stage) {
  run_parts_grad_check(cfg, partition_from_layers(cfg, layers_per_stage));
}

void run_layout_grad_check(const GptConfig& cfg, const std::string& layout) {
  run_parts_grad_check(cfg, parse_layout(cfg, layout));
}

TEST(ModelGradTest, OneStage) { run_model_grad_check(small_config(false), {2}); }

TEST(ModelGradTest, TwoStagesAcrossBoundary) { run_model_grad_check(small_config(false), {1, 1}); }

TEST(ModelGradTest, ThreeStagesWithHeadOnlyStage) {
  run_model_grad_check(small_config(false), {1, 1, 0});
}

TEST(ModelGradTest, TiedEmbeddingsTwoStages) { run_model_grad_check(small_config(true), {1, 1}); }

TEST(ModelGradTest, TiedEmbeddingsOneStage) { run_model_grad_check(small_config(true), {2}); }

}  // namespace
}  // namespace paci

namespace paci {
namespace {

// Stage boundaries between a block's attention and MLP halves: the gradient of the first
// residual stream crosses the boundary (dx_in of the MLP half's stage is dx_out of the
// attention half's), and the block's tensors are split over two stages.
TEST(ModelGradTest, BoundaryInsideABlock) {
  run_layout_grad_check(small_config(false), std::string("E+0.5,1,0.5+H"));
}

TEST(ModelGradTest, BoundaryInsideABlockTied) {
  run_layout_grad_check(small_config(true), std::string("1.5,0.5+H"));
}

TEST(ModelGradTest, EveryUnitItsOwnStage) {
  // Embedding, attention 0, MLP 0, attention 1, MLP 1, head: six stages.
  run_layout_grad_check(small_config(false), std::string("E,0.5,0.5,0.5,0.5,H"));
}

}  // namespace
}  // namespace paci
