// sim and exec describe a model once (exec/model/config.h): for every preset the analytic
// cost model (sim/gpt_cost) and the executor agree on the shapes and tying, the parameter
// count (per stage and in total), the FLOPs of each unit, and they partition with the same
// partitioner (exec/model/partition.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <string>

#include "exec/model/config.h"
#include "exec/model/param_layout.h"
#include "exec/model/partition.h"
#include "sim/gpt_cost.h"

namespace paci {
namespace {

GptCostOptions h100(const GptConfig& cfg, int stages) {
  GptCostOptions o;
  o.model = cfg;
  o.device = parse_device("h100");
  o.stages = stages;
  o.micro_batch = 8;
  return o;
}

double slowest(const CostModel& c) {
  double hi = 0;
  for (const StageCost& s : c.stages) hi = std::max(hi, s.f + s.b);
  return hi;
}
double fastest(const CostModel& c) {
  double lo = 1e300;
  for (const StageCost& s : c.stages) lo = std::min(lo, s.f + s.b);
  return lo;
}

TEST(SimExecAgreement, EveryPreset) {
  std::vector<std::string> specs = preset_names();
  for (const char* alias : {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"}) specs.push_back(alias);
  specs.push_back("custom:layers=3,d=48,heads=3,seq=32,vocab=97,tied=1");
  for (const std::string& name : specs) {
    SCOPED_TRACE(name);
    const GptConfig exec = preset(name);
    const GptConfig sim = parse_gpt_model(name);
    EXPECT_EQ(exec.layers, sim.layers);
    EXPECT_EQ(exec.channels, sim.channels);
    EXPECT_EQ(exec.heads, sim.heads);
    EXPECT_EQ(exec.seq_len, sim.seq_len);
    EXPECT_EQ(exec.vocab_size, sim.vocab_size);
    EXPECT_EQ(exec.tied_embeddings, sim.tied_embeddings);
    // GPT-2 is tied (as llm.c); the PACI paper's gpt2-350m is not.
    if (name.find("gpt2") == 0) EXPECT_EQ(exec.tied_embeddings, name != "gpt2-350m" && name != "gpt2-medium");

    // GEMM FLOPs of the units: 2 per multiply-add of every weight matrix, the head's GEMM
    // counted even when it shares wte.
    const double C = exec.channels, V = exec.vocab_size, L = exec.layers, T = exec.seq_len;
    double gemm = 0, attention = 0, training = 0;
    for (int u = 0; u < num_units(exec); ++u) {
      const UnitFlops f = unit_flops(exec, u);
      gemm += f.gemm, attention += f.attention, training += f.training();
    }
    EXPECT_DOUBLE_EQ(gemm, 2 * (L * 12 * C * C + V * C));
    EXPECT_DOUBLE_EQ(attention, L * 4 * T * C);

    for (int S : {1, 2, 3, 8}) {
      if (S > num_units(exec)) continue;
      SCOPED_TRACE("S=" + std::to_string(S));
      const GptCostOptions o = h100(sim, S);
      const GptCost c = gpt_cost_model(o);
      ASSERT_EQ(static_cast<int>(c.partition.size()), S);
      double params = 0, flops = 0;
      for (int s = 0; s < S; ++s) params += c.params_per_stage[s], flops += c.flops_per_stage[s];
      EXPECT_EQ(params, static_cast<double>(num_parameters(exec)));  // tying included
      const double tok = 8.0 * sim.seq_len;
      EXPECT_NEAR(flops, tok * training, 1e-9 * flops);
      // The sim's partition is the one partitioner's answer for the analytic unit costs,
      // and exec builds it: what each stage stores is what the sim charges it.
      EXPECT_EQ(c.partition, balanced_partition(exec, S, gpt_partition_costs(o)));
      const auto units = gpt_unit_costs(o);
      for (int s = 0; s < S; ++s) {
        const ParamLayout layout = make_param_layout(exec, c.partition[s]);
        size_t stored = 0;
        for (const TensorInfo& t : layout.tensors) stored += t.size;
        double want = 0;
        for (int u = c.partition[s].first_unit(); u <= c.partition[s].last_unit(); ++u) want += units[u].stored_params;
        EXPECT_EQ(static_cast<double>(stored), want) << "stage " << s;
      }
      // The executor's own FLOP-proportional partition is as balanced under the analytic
      // model as the analytic model's choice, within 6% (the analytic model adds memory traffic).
      GptCostOptions with_exec = o;
      with_exec.partition = balanced_partition(exec, S);
      const GptCost ce = gpt_cost_model(with_exec);
      EXPECT_LE(slowest(ce.cost), 1.06 * slowest(c.cost)) << c.layout << " vs exec " << ce.layout;
    }
  }
}

// The paper's setup: GPT-2 Medium, 8 stages of H100, micro-batch 8. The whole-layer partition
// 3,3,3,3,3,4,4,1 left the head's stage the slowest; units balance it.
TEST(SimExecAgreement, PaperSetupIsBalanced) {
  const GptConfig med = parse_gpt_model("gpt2-350m");
  GptCostOptions o = h100(med, 8);
  const GptCost now = gpt_cost_model(o);
  o.partition = parse_layout(med, "3,3,3,3,3,4,4,1");
  const GptCost before = gpt_cost_model(o);
  auto mean = [](const CostModel& c) {
    double sum = 0;
    for (const StageCost& s : c.stages) sum += s.f + s.b;
    return sum / c.stages.size();
  };
  const double r_before = slowest(before.cost) / fastest(before.cost);
  const double r_now = slowest(now.cost) / fastest(now.cost);
  const double m_before = slowest(before.cost) / mean(before.cost);
  const double m_now = slowest(now.cost) / mean(now.cost);
  std::cout << "paper setup (F+B per micro-batch):\n  before " << before.layout << ": slowest "
            << slowest(before.cost) * 1e3 << " ms, fastest " << fastest(before.cost) * 1e3
            << " ms, slowest/fastest " << r_before << ", slowest/mean " << m_before << "\n  now    "
            << now.layout << ": slowest " << slowest(now.cost) * 1e3 << " ms, fastest "
            << fastest(now.cost) * 1e3 << " ms, slowest/fastest " << r_now << ", slowest/mean " << m_now
            << "\n";
  const StageCost& last = before.cost.stages.back();
  EXPECT_EQ(last.f + last.b, slowest(before.cost));  // the head's stage was the slowest
  EXPECT_GT(r_before, 1.4);
  EXPECT_GT(m_before, 1.25);
  // Now the slowest stage is within 5% of the mean; the head alone (~3.5 blocks, indivisible)
  // bounds it from below, so the 3-block first stage stays the fastest.
  EXPECT_LT(m_now, 1.05);
  EXPECT_LT(r_now, 1.25);
  EXPECT_LT(slowest(now.cost), 0.85 * slowest(before.cost));
}

}  // namespace
}  // namespace paci
