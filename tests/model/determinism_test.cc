// Bitwise reproducibility in fp32 on the tiny preset (GPT-2 vocabulary): the same
// micro-batches through any partition of the model give bit-identical losses, gradients and
// AdamW-updated weights; the zero-bubble split backward (I then W) equals the full backward
// bit for bit. These are exact comparisons (memcmp), not tolerances: the runtime promises
// that P stages reproduce one stage exactly.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "exec/model/optimizer.h"
#include "tests/model/pipeline_util.h"

namespace paci {
namespace {

using testing::random_tokens;
using testing::TestPipeline;
using Pass = TestPipeline<float>::Pass;

constexpr int kB = 2, kT = 64, kMicroBatches = 2;

struct RunResult {
  std::vector<float> losses;
  std::map<std::string, std::vector<float>> grads;
  std::map<std::string, std::vector<float>> params_after_step;
  float loss_after_step = 0;
};

enum class Order { kFull, kSplitPerMicroBatch, kSplitInterleaved };

RunResult run_parts(const GptConfig& cfg, const std::vector<StagePartition>& parts,
                    Order order = Order::kFull) {
  TestPipeline<float> pipe(cfg, parts, kB, kT, kMicroBatches,
                           /*seed=*/1234);
  std::vector<std::vector<int>> tokens, targets;
  for (int j = 0; j < kMicroBatches; ++j) {
    tokens.push_back(random_tokens(kB * kT, cfg.vocab_size, 10 + j));
    targets.push_back(random_tokens(kB * kT, cfg.vocab_size, 20 + j));
  }
  RunResult r;
  const float scale = 1.0f / kMicroBatches;
  for (int j = 0; j < kMicroBatches; ++j)
    r.losses.push_back(pipe.forward(j, tokens[j], targets[j]));
  switch (order) {
    case Order::kFull:
      for (int j = 0; j < kMicroBatches; ++j) pipe.backward(j, scale, Pass::kFull);
      break;
    case Order::kSplitPerMicroBatch:
      for (int j = 0; j < kMicroBatches; ++j) {
        pipe.backward(j, scale, Pass::kInputOnly);
        pipe.backward(j, scale, Pass::kWeightOnly);
      }
      break;
    case Order::kSplitInterleaved:  // I0 I1 W0 W1, as a zero-bubble schedule may run them
      for (int j = 0; j < kMicroBatches; ++j) pipe.backward(j, scale, Pass::kInputOnly);
      for (int j = 0; j < kMicroBatches; ++j) pipe.backward(j, scale, Pass::kWeightOnly);
      break;
  }
  if (cfg.tied_embeddings) pipe.sum_tied();
  for (const auto& [name, where] : pipe.tensors()) r.grads[name] = pipe.tensor_values(name, true);

  AdamWConfig ocfg;
  ocfg.lr = 1e-3;
  ocfg.warmup_steps = 2;
  ocfg.total_steps = 10;
  for (int s = 0; s < pipe.size(); ++s) {
    StageModel& m = pipe.stage(s);
    AdamW opt(m.backend(), m.layout(), ocfg);
    opt.step(m.params(), m.grads());
  }
  for (const auto& [name, where] : pipe.tensors()) {
    r.params_after_step[name] = pipe.tensor_values(name, false);
  }
  r.loss_after_step = pipe.forward(0, tokens[0], targets[0]);
  pipe.release(0);
  return r;
}

RunResult run(const GptConfig& cfg, const std::vector<int>& layers_per_stage,
              Order order = Order::kFull) {
  return run_parts(cfg, partition_from_layers(cfg, layers_per_stage), order);
}

RunResult run_layout(const GptConfig& cfg, const std::string& layout, Order order = Order::kFull) {
  return run_parts(cfg, parse_layout(cfg, layout), order);
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

size_t first_difference(const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
  }
  return std::min(a.size(), b.size());
}

void expect_identical(const RunResult& ref, const RunResult& got, const std::string& label) {
  ASSERT_TRUE(same_bits(ref.losses, got.losses))
      << label << ": loss " << got.losses[0] << " vs " << ref.losses[0];
  ASSERT_EQ(ref.grads.size(), got.grads.size()) << label;
  for (const auto& [name, g] : ref.grads) {
    const auto& h = got.grads.at(name);
    const size_t i = first_difference(g, h);
    EXPECT_TRUE(same_bits(g, h)) << label << ": gradient of " << name << " differs at [" << i
                                 << "]: " << (i < h.size() ? h[i] : 0.f) << " vs "
                                 << (i < g.size() ? g[i] : 0.f);
    const auto& p = ref.params_after_step.at(name);
    const auto& q = got.params_after_step.at(name);
    EXPECT_TRUE(same_bits(p, q)) << label << ": " << name << " after AdamW differs at ["
                                 << first_difference(p, q) << "]";
  }
  const float a = ref.loss_after_step, b = got.loss_after_step;
  EXPECT_EQ(std::memcmp(&a, &b, sizeof(float)), 0)
      << label << ": loss after step " << b << " vs " << a;
}

TEST(DeterminismTest, PartitionIndependentUntied) {
  const GptConfig cfg = preset("tiny");
  const RunResult ref = run(cfg, {2});
  ASSERT_GT(ref.losses[0], 9.0f);  // ≈ ln(50257) = 10.8 at init: the model really ran
  ASSERT_LT(ref.losses[0], 12.0f);
  expect_identical(ref, run(cfg, {1, 1}), "P=2 {1,1}");
  expect_identical(ref, run(cfg, {1, 1, 0}), "P=3 {1,1,0}");
  expect_identical(ref, run(cfg, {0, 2}), "P=2 {0,2}");
  expect_identical(ref, run(cfg, {2, 0}), "P=2 {2,0}");
}

TEST(DeterminismTest, PartitionIndependentTied) {
  GptConfig cfg = preset("tiny");
  cfg.tied_embeddings = true;
  const RunResult ref = run(cfg, {2});
  EXPECT_TRUE(same_bits(ref.grads.at("wte"), ref.grads.at("lm_head")));
  EXPECT_TRUE(same_bits(ref.params_after_step.at("wte"), ref.params_after_step.at("lm_head")));
  expect_identical(ref, run(cfg, {1, 1}), "tied P=2 {1,1}");
  expect_identical(ref, run(cfg, {1, 1, 0}), "tied P=3 {1,1,0}");
}

// Stage boundaries between a block's attention and MLP halves give the bits of the whole
// model: loss, every gradient, the weights after AdamW, the loss after the step.
TEST(DeterminismTest, BlockSplitBetweenItsHalves) {
  const GptConfig cfg = preset("tiny");
  const RunResult ref = run(cfg, {2});
  for (const char* layout : {"1.5,0.5+H", "E,1,1,H", "E+0.5,1,0.5+H", "E,0.5,0.5,0.5,0.5,H", "0.5,1.5",
                             "E+1.5,0.5,H"}) {
    expect_identical(ref, run_layout(cfg, layout), layout);
  }
  expect_identical(ref, run_layout(cfg, "E+0.5,1,0.5+H", Order::kSplitInterleaved), "I/W split mid-block");
}

TEST(DeterminismTest, BlockSplitTiedAndOddModel) {
  GptConfig tied = preset("tiny");
  tied.tied_embeddings = true;
  const RunResult ref = run(tied, {2});
  expect_identical(ref, run_layout(tied, "E+0.5,1,0.5+H"), "tied E+0.5,1,0.5+H");
  // An odd model: 3 blocks, C 48, 3 heads, vocabulary of 97 (not a power of two).
  GptConfig odd = preset("tiny");
  odd.layers = 3;
  odd.channels = 48;
  odd.heads = 3;
  odd.vocab_size = 97;
  odd.padded_vocab = 128;
  const RunResult oref = run(odd, {3});
  for (const char* layout : {"E+1.5,1.5+H", "0.5,2,0.5", "E+2.5,0.5,H", "1,0.5,1,0.5"}) {
    expect_identical(oref, run_layout(odd, layout), std::string("odd ") + layout);
  }
}

TEST(DeterminismTest, SameRunTwiceIsIdentical) {
  const GptConfig cfg = preset("tiny");
  expect_identical(run(cfg, {1, 1}), run(cfg, {1, 1}), "repeat P=2");
}

TEST(DeterminismTest, SplitBackwardEqualsFullBackward) {
  const GptConfig cfg = preset("tiny");
  const RunResult full = run(cfg, {1, 1});
  expect_identical(full, run(cfg, {1, 1}, Order::kSplitPerMicroBatch), "I,W per micro-batch");
  expect_identical(full, run(cfg, {1, 1}, Order::kSplitInterleaved), "I0 I1 W0 W1");
}

// The runtime drives each stage from its own thread, all sharing one CPU backend (and
// OpenBLAS): two models trained concurrently must give the bits of a serial run.
TEST(DeterminismTest, ConcurrentStagesShareOneBackend) {
  const GptConfig cfg = preset("tiny");
  const StagePartition whole = partition_from_layers(cfg, {2})[0];
  CpuBackend be;
  const int Tn = 32;
  const auto tok = random_tokens(kB * Tn, cfg.vocab_size, 7);
  const auto tgt = random_tokens(kB * Tn, cfg.vocab_size, 8);
  auto train = [&](StageModel& m, float* loss) {
    *loss = m.forward(0, m.params(), tok.data(), nullptr, tgt.data(), nullptr);
    m.backward(0, m.params(), nullptr, nullptr, 1.0f);
  };
  StageModel serial(be, cfg, whole, kB, Tn, 1, 5), a(be, cfg, whole, kB, Tn, 1, 5),
      b(be, cfg, whole, kB, Tn, 1, 5);
  float ls = 0, la = 0, lb = 0;
  train(serial, &ls);
  std::thread ta(train, std::ref(a), &la), tb(train, std::ref(b), &lb);
  ta.join();
  tb.join();
  const std::vector<float> gs(serial.grads(), serial.grads() + serial.param_count());
  EXPECT_TRUE(same_bits(gs, std::vector<float>(a.grads(), a.grads() + a.param_count())));
  EXPECT_TRUE(same_bits(gs, std::vector<float>(b.grads(), b.grads() + b.param_count())));
  EXPECT_EQ(std::memcmp(&ls, &la, sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(&ls, &lb, sizeof(float)), 0);
}

TEST(DeterminismTest, SlotMisuseThrows) {
  GptConfig cfg = preset("tiny");
  CpuBackend be;
  StageModel m(be, cfg, partition_from_layers(cfg, {2})[0], 1, 8, 1, 1);
  const auto tok = random_tokens(8, cfg.vocab_size, 1);
  EXPECT_THROW(m.backward_weight(0), std::logic_error);  // nothing to do yet
  m.forward(0, m.params(), tok.data(), nullptr, tok.data(), nullptr);
  EXPECT_THROW(m.forward(0, m.params(), tok.data(), nullptr, tok.data(), nullptr),
               std::logic_error);                        // slot busy
  EXPECT_THROW(m.backward_weight(0), std::logic_error);  // before backward_input
  m.backward_input(0, m.params(), nullptr, nullptr, 1.0f);
  EXPECT_THROW(m.backward_input(0, m.params(), nullptr, nullptr, 1.0f), std::logic_error);
  m.backward_weight(0);
  EXPECT_EQ(m.slot_state(0), StageModel::SlotState::kFree);
  EXPECT_THROW(m.slot_state(1), std::out_of_range);
}

}  // namespace
}  // namespace paci
