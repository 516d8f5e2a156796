// What the backward semantics cost in memory under each precision of the analytic GPT model
// (issue 15): `forward` keeps, per weight version in flight, a whole fp32 copy (fp32), the
// bf16 copy of the matmul weights (bf16 with a persistent bf16 copy), or nothing beyond the
// casts every micro-batch keeps under autocast, where 1F1B holds them too and PACI's memory
// stays 1F1B's. Every figure is recomputed here from parameter counts, not read back from the
// code under test.
#include <gtest/gtest.h>

#include "schedules/analysis.h"
#include "schedules/graph.h"
#include "schedules/source.h"
#include "sim/gpt_cost.h"
#include "sim/plan.h"
#include "tests/sim/test_util.h"

namespace paci {
namespace {

using testing::gen;

constexpr int P = 4, M = 8;

GptCost model(const std::string& precision) {
  GptCostOptions o;
  o.model = parse_gpt_model("custom:layers=8,d=256,heads=4,seq=128,vocab=4096");
  o.device = parse_device("h100");
  o.stages = P;
  o.micro_batch = 2;
  o.precision = precision;
  o.partition = parse_layout(o.model, "E+2,2,2,2+H");
  return gpt_cost_model(o);
}

// Stored and matmul parameters per stage of the layout above, counted by hand.
struct Counts {
  double stored[P], matmul[P];
};
Counts counts() {
  const double C = 256, V = 4096, T = 128;
  const double attn = 4 * C * C + 4 * C, mlp = 8 * C * C + 5 * C, ln = 2 * C;  // per block
  const double block_matmul = attn + mlp, block_stored = attn + mlp + 2 * ln;
  Counts c{};
  for (int s = 0; s < P; ++s) {
    c.matmul[s] = 2 * block_matmul;
    c.stored[s] = 2 * block_stored;
  }
  c.stored[0] += V * C + T * C;      // the embedding: a lookup, nothing cast
  c.matmul[P - 1] += V * C;          // the head's matmul
  c.stored[P - 1] += ln + V * C;     // final LayerNorm and the untied head
  return c;
}

std::vector<double> device_peaks(const Schedule& s, const CostModel& c) {
  const testing::SimRun r = testing::run(s, c);
  std::vector<double> out;
  for (const DeviceMetrics& d : r.m.devices) out.push_back(d.peak_memory);
  return out;
}

std::vector<double> stashed(const Schedule& s, const CostModel& c) {
  const SimResult r = simulate(s, c, {});
  std::vector<double> out;
  for (const StaticMemory& m : r.trace.static_memory) out.push_back(m.stashed);
  return out;
}

// paci with a = 1: every micro-batch in flight on stage s crosses up to P - 1 - s updates.
Schedule paci(WeightPolicy b) { return with_backward(gen("paci", P, M, 3, 0, 1), b); }

TEST(BackwardMemory, ForwardKeepsAWholeFp32CopyPerVersionInFp32) {
  const GptCost g = model("fp32");
  const Counts n = counts();
  const Schedule s = paci(WeightPolicy::kForward);
  const Analysis an = analyze(s, ActionIndex(s));
  const std::vector<double> st = stashed(s, g.cost);
  for (int d = 0; d < P; ++d) {
    EXPECT_EQ(an.stages[d].weight_copies, P - d) << "stage " << d;  // versions in flight
    EXPECT_DOUBLE_EQ(st[d], (an.stages[d].weight_copies - 1) * 4 * n.stored[d]) << "device " << d;
  }
  EXPECT_GT(st[0], 0);
}

TEST(BackwardMemory, ForwardKeepsTheBf16CopyOfTheMatmulWeightsInBf16) {
  const GptCost g = model("bf16");
  const Counts n = counts();
  const Schedule s = paci(WeightPolicy::kForward);
  const Analysis an = analyze(s, ActionIndex(s));
  const std::vector<double> st = stashed(s, g.cost);
  for (int d = 0; d < P; ++d) {
    EXPECT_DOUBLE_EQ(g.cost.stage(d).weight_bytes, 6 * n.stored[d]);  // bf16 copy + fp32 master
    EXPECT_DOUBLE_EQ(st[d], (an.stages[d].weight_copies - 1) * 2 * n.matmul[d]) << "device " << d;
  }
  // The peak differs from `current`'s by exactly those copies.
  const std::vector<double> fwd = device_peaks(s, g.cost), cur = device_peaks(paci(WeightPolicy::kCurrent), g.cost);
  for (int d = 0; d < P; ++d) EXPECT_DOUBLE_EQ(fwd[d] - cur[d], st[d]) << "device " << d;
}

TEST(BackwardMemory, UnderAutocastPaciForwardHoldsWhat1F1BHolds) {
  const GptCost g = model("autocast");
  const GptCost bf16 = model("bf16");
  const Counts n = counts();
  for (int d = 0; d < P; ++d) {
    const StageCost& a = g.cost.stage(d);
    const StageCost& b = bf16.cost.stage(d);
    EXPECT_DOUBLE_EQ(a.weight_bytes, 4 * n.stored[d]);                          // fp32 master only
    EXPECT_DOUBLE_EQ(a.activation_bytes - b.activation_bytes, 2 * n.matmul[d]);  // the casts
    EXPECT_DOUBLE_EQ(a.freed_by_i * a.activation_bytes - b.freed_by_i * b.activation_bytes,
                     2 * n.matmul[d]);  // freed by I, which is what reads them
  }
  const std::vector<double> fwd = device_peaks(paci(WeightPolicy::kForward), g.cost);
  const std::vector<double> cur = device_peaks(paci(WeightPolicy::kCurrent), g.cost);
  const std::vector<double> ofob = device_peaks(gen("1f1b", P, M, 3), g.cost);
  EXPECT_EQ(stashed(paci(WeightPolicy::kForward), g.cost), std::vector<double>(P, 0.0));
  for (int d = 0; d < P; ++d) {
    EXPECT_DOUBLE_EQ(fwd[d], cur[d]) << "device " << d;
    // Both hold P - d micro-batches in flight, casts included.
    EXPECT_DOUBLE_EQ(fwd[d], ofob[d]) << "device " << d;
  }
}

TEST(BackwardMemory, PlanPeaksAgreeWithTheSimulator) {
  for (const char* precision : {"fp32", "bf16", "autocast"}) {
    const GptCost g = model(precision);
    for (WeightPolicy b : {WeightPolicy::kCurrent, WeightPolicy::kForward}) {
      const Schedule s = paci(b);
      const std::vector<double> sim = device_peaks(s, g.cost);
      const double top = *std::max_element(sim.begin(), sim.end());
      EXPECT_DOUBLE_EQ(program_order_peak(s, analyze(s, ActionIndex(s)), g.cost), top)
          << precision << " " << policy_name(b);
    }
  }
}

TEST(BackwardMemory, CostFilesKeepVersionBytes) {
  CostModel c = model("bf16").cost;
  const CostModel back = cost_from_json(cost_to_json(c), "round trip");
  for (int d = 0; d < P; ++d) EXPECT_DOUBLE_EQ(back.stage(d).version_bytes, c.stage(d).version_bytes);
  // Absent means a whole copy; a negative number is refused with the field's name.
  const CostModel plain = cost_from_json(R"({"format": "paci-cost", "version": 1, "default": {"f": 1}})", "x");
  EXPECT_EQ(plain.stage(0).version_bytes, kWholeCopy);
  try {
    cost_from_json(R"({"format": "paci-cost", "version": 1, "default": {"version_bytes": -2}})", "x.json");
    FAIL() << "accepted a negative version_bytes";
  } catch (const CostError& e) {
    EXPECT_NE(std::string(e.what()).find("version_bytes"), std::string::npos) << e.what();
  }
}

TEST(BackwardMemory, PrecisionIsChecked) {
  try {
    model("fp8");
    FAIL() << "accepted fp8";
  } catch (const CostError& e) {
    EXPECT_EQ(std::string(e.what()), "--precision: 'fp8' is not bf16, autocast or fp32");
  }
}

}  // namespace
}  // namespace paci
