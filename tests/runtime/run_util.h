// Helpers of the runtime tests: a small model, one run of a schedule on it (losses and final
// weights), and a bitwise comparison of two runs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "exec/runtime/runtime.h"
#include "exec/runtime/shard_batches.h"
#include "schedules/ir.h"

namespace paci::testing {

// Small enough to run many schedules in seconds; 4 layers so that 4 stages hold one each.
inline GptConfig small_model() {
  GptConfig c;
  c.vocab_size = 256;
  c.padded_vocab = 256;
  c.seq_len = 16;
  c.layers = 4;
  c.channels = 32;
  c.heads = 4;
  return c;
}

constexpr int kB = 2, kT = 16;

struct Outcome {
  RunResult result;
  std::map<std::string, std::vector<float>> weights;  // tensor name -> values
};

inline Outcome run(const Schedule& s, uint64_t seed = 7, GptConfig model = small_model()) {
  RunConfig cfg;
  cfg.model = model;
  cfg.seed = seed;
  cfg.adamw.lr = 1e-3;
  cfg.adamw.warmup_steps = 2;
  cfg.adamw.total_steps = 10;
  SyntheticBatches data(kB, kT, cfg.model.vocab_size, seed);
  PipelineRuntime rt(s, cfg, data);
  Outcome out;
  out.result = rt.run();
  for (int st = 0; st < rt.num_stages(); ++st) {
    StageModel& m = rt.stage(st);
    for (const TensorInfo& t : m.layout().tensors) {
      const float* p = m.params() + t.offset;
      out.weights[t.name] = std::vector<float>(p, p + t.size);
    }
  }
  return out;
}

inline void expect_bitwise_equal(const Outcome& a, const Outcome& b, const std::string& what) {
  ASSERT_EQ(a.result.mb_loss.size(), b.result.mb_loss.size()) << what;
  for (size_t i = 0; i < a.result.mb_loss.size(); ++i)
    ASSERT_EQ(a.result.mb_loss[i], b.result.mb_loss[i]) << what << ": loss of micro-batch " << i;
  ASSERT_EQ(a.weights.size(), b.weights.size()) << what;
  for (const auto& [name, w] : a.weights) {
    auto it = b.weights.find(name);
    ASSERT_NE(it, b.weights.end()) << what << ": tensor " << name;
    ASSERT_EQ(w.size(), it->second.size()) << what << ": " << name;
    for (size_t i = 0; i < w.size(); ++i)
      ASSERT_EQ(w[i], it->second[i]) << what << ": " << name << "[" << i << "]";
  }
}

}  // namespace paci::testing
