// paci plan's search (sim/plan.h): the pruned search finds the front an exhaustive search
// finds, its memory bound is the simulator's peak, its step bound is below every simulated
// step time, and the recommendation respects the memory and drift limits.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "sim/gpt_cost.h"
#include "sim/plan.h"

namespace paci {
namespace {

PlanCostFn gpt_cost(const std::string& model) {
  GptCostOptions base;
  base.model = parse_gpt_model(model);
  base.device = parse_device("h100");
  return [base](int stages, int micro_batch, const PartitionLimits& limits) {
    GptCostOptions o = base;
    o.stages = stages;
    o.micro_batch = micro_batch;
    o.limits = limits;
    GptCost g = gpt_cost_model(o);
    return PlanCost{g.cost, g.layout};
  };
}

// A small space: 2 depths x 6 micro-batch sizes x 5 schedules (+ v, backward semantics).
PlanSpace small_space(double limit_gib) {
  PlanSpace sp;
  sp.schedules = {"gpipe", "1f1b", "interleaved-1f1b", "zb-h1", "paci"};
  sp.stages = {2, 4};
  sp.global_batch = 32;
  sp.virtual_stages = {2};
  sp.memory_limit = limit_gib * (1ull << 30);
  sp.max_drift = -1;
  return sp;
}

// The front of the fitting simulated candidates, computed here from scratch.
std::map<std::string, std::pair<double, double>> brute_front(const PlanResult& r, double limit) {
  std::vector<const PlanCandidate*> fit;
  for (const PlanCandidate& c : r.candidates)
    if (c.step_time > 0 && (limit == 0 || c.sim_peak_memory <= limit)) fit.push_back(&c);
  std::map<std::string, std::pair<double, double>> out;
  for (const PlanCandidate* a : fit) {
    bool beaten = false;
    for (const PlanCandidate* b : fit)
      if (b->step_time <= a->step_time && b->sim_peak_memory <= a->sim_peak_memory &&
          (b->step_time < a->step_time || b->sim_peak_memory < a->sim_peak_memory))
        beaten = true;
    if (!beaten) out[a->label()] = {a->step_time, a->sim_peak_memory};
  }
  return out;
}

std::map<std::string, std::pair<double, double>> front_of(const PlanResult& r) {
  std::map<std::string, std::pair<double, double>> out;
  for (int i : r.front) out[r.candidates[i].label()] = {r.candidates[i].step_time, r.candidates[i].memory};
  return out;
}

TEST(Plan, PrunedFrontEqualsExhaustiveSearch) {
  const PlanCostFn cost = gpt_cost("gpt2-350m");
  for (double limit_gib : {0.0, 12.0, 6.0}) {
    PlanSpace sp = small_space(limit_gib);
    // V placements (two stages per device) and overlapped F&B actions (no memory bound) too.
    sp.schedules.insert(sp.schedules.end(), {"zb-v", "paci-v", "dualpipev"});
    sp.prune = false;
    const PlanResult all = run_plan(sp, cost);
    sp.prune = true;
    const PlanResult pruned = run_plan(sp, cost);
    const auto expected = brute_front(all, sp.memory_limit);
    ASSERT_GE(expected.size(), 2u) << "limit " << limit_gib;
    EXPECT_EQ(front_of(all), expected) << "limit " << limit_gib;
    // Same candidates, same numbers (simulation is deterministic: exact equality).
    EXPECT_EQ(front_of(pruned), expected) << "limit " << limit_gib;
    EXPECT_EQ(all.candidates.size(), pruned.candidates.size());
    // The bounds must actually skip work for this to test the pruning.
    EXPECT_GT(pruned.over_memory + pruned.dominated, 0) << "limit " << limit_gib;
    if (limit_gib > 0) EXPECT_GT(pruned.over_memory, 0) << "limit " << limit_gib;
    if (limit_gib == 0) EXPECT_GT(pruned.dominated, 0) << "the step bound pruned nothing";
  }
}

TEST(Plan, BoundsHoldOnEverySimulatedCandidate) {
  PlanSpace sp = small_space(0);
  sp.prune = false;
  sp.backward = {WeightPolicy::kCurrent, WeightPolicy::kForward, WeightPolicy::kRecompute};
  sp.schedules.insert(sp.schedules.end(), {"zb-v", "v-half", "paci-v"});
  const PlanResult r = run_plan(sp, gpt_cost("gpt2-124m"));
  int checked = 0;
  for (const PlanCandidate& c : r.candidates) {
    if (c.step_time <= 0) continue;
    // The program-order replay is the simulator's own count: equal up to the rounding of
    // summing the same doubles in another order (1e-12 relative).
    EXPECT_NEAR(c.memory_bound, c.sim_peak_memory, 1e-12 * c.sim_peak_memory) << c.label();
    EXPECT_LE(c.step_bound, c.step_time * (1 + 1e-12)) << c.label();
    EXPECT_GT(c.step_bound, 0) << c.label();
    ++checked;
  }
  EXPECT_GT(checked, 50);
}

TEST(Plan, RecommendationRespectsTheLimits) {
  const PlanCostFn cost = gpt_cost("gpt2-350m");
  PlanSpace sp = small_space(0);
  const PlanResult free = run_plan(sp, cost);
  ASSERT_GE(free.recommended, 0);
  const PlanCandidate fastest = free.candidates[free.recommended];
  // A limit just below the fastest candidate's memory: the pick changes and fits.
  sp.memory_limit = fastest.memory * 0.99;
  const PlanResult tight = run_plan(sp, cost);
  ASSERT_GE(tight.recommended, 0) << tight.reason;
  const PlanCandidate& pick = tight.candidates[tight.recommended];
  EXPECT_LE(pick.memory, sp.memory_limit);
  EXPECT_NE(pick.label(), fastest.label());
  EXPECT_GE(pick.step_time, fastest.step_time);
  // It is the fastest of the exhaustive search's fitting candidates.
  sp.prune = false;
  const PlanResult all = run_plan(sp, cost);
  double best = 1e300;
  for (const PlanCandidate& c : all.candidates)
    if (c.step_time > 0 && c.sim_peak_memory <= sp.memory_limit) best = std::min(best, c.step_time);
  EXPECT_EQ(pick.step_time, best);
  // With drift 0 only synchronous schedules qualify.
  sp.prune = true;
  sp.max_drift = 0;
  const PlanResult sync = run_plan(sp, cost);
  ASSERT_GE(sync.recommended, 0);
  EXPECT_EQ(sync.candidates[sync.recommended].max_drift, 0);
  EXPECT_NE(sync.candidates[sync.recommended].schedule, "paci") << sync.candidates[sync.recommended].label();
  // Nothing fits a limit below every candidate's weights.
  sp.memory_limit = 1 << 20;
  const PlanResult none = run_plan(sp, cost);
  EXPECT_EQ(none.recommended, -1);
  EXPECT_NE(none.reason.find("no configuration fits"), std::string::npos) << none.reason;
}

TEST(Plan, BadSpacesAreRefused) {
  PlanSpace sp = small_space(0);
  sp.global_batch = 0;
  EXPECT_THROW(run_plan(sp, gpt_cost("tiny")), std::invalid_argument);
  sp = small_space(0);
  sp.micro_batch_sizes = {3, 5};
  EXPECT_THROW(run_plan(sp, gpt_cost("tiny")), std::invalid_argument);
  sp = small_space(0);
  sp.schedules = {"nope"};
  EXPECT_THROW(run_plan(sp, gpt_cost("tiny")), std::invalid_argument);
}

}  // namespace
}  // namespace paci
