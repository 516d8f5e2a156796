// The PACI runtime's dynamic policy (backward first, forward while in-flight < P - s).
#include <gtest/gtest.h>

#include <map>

#include "tests/sim/test_util.h"

namespace paci::testing {
namespace {

TEST(DynamicPolicy, RealisesTheStaticPaciOrderUnderUniformCosts) {
  for (int P : {1, 2, 4, 8})
    for (int M : {1, 3, 8, 16})
      for (int a : {1, 2, M}) {
        if (M * 3 % a != 0) continue;
        for (double comm : {0.0, 0.25}) {
          CostModel c = uniform(1, 2);
          c.latency = comm;
          SimResult dyn = simulate_paci_policy(P, M, 3, a, c);
          Schedule stat = gen("paci", P, M, 3, 0, a);
          SCOPED_TRACE(::testing::Message() << "P=" << P << " M=" << M << " a=" << a << " comm=" << comm);
          EXPECT_EQ(dyn.realised.programs, stat.programs);
          EXPECT_EQ(dyn.realised.name, "paci-dynamic");
        }
      }
}

TEST(DynamicPolicy, ReplayingTheRealisedOrderGivesTheSameTimes) {
  CostModel c = uniform(1, 2);
  c.stages.resize(4, c.stages[0]);
  c.stages[2].f = 1.7;  // a slow stage
  c.latency = 0.1;
  SimOptions o;
  o.jitter = 0.4;
  o.seed = 7;
  o.stragglers = {{1, 1.5}};
  SimResult dyn = simulate_paci_policy(4, 8, 4, 4, c, o);
  Analysis an = validate(dyn.realised);  // a valid IR schedule within paci's declared bounds
  SimResult replay = simulate(dyn.realised, c, o);
  ASSERT_EQ(dyn.trace.actions.size(), replay.trace.actions.size());
  // The dynamic trace is indexed like the static paci program, the replay like the
  // realised one: match actions by name.
  auto key = [](const TraceAction& x) {
    return to_string(x.action) + (x.action.kind == ActionKind::OPT ? "#" + std::to_string(x.version) : "");
  };
  std::map<std::string, const TraceAction*> by_name;
  for (const auto& x : replay.trace.actions) by_name[key(x)] = &x;
  for (const auto& x : dyn.trace.actions) {
    const TraceAction* y = by_name.at(key(x));
    EXPECT_EQ(x.start, y->start) << to_string(x.action);
    EXPECT_EQ(x.end, y->end) << to_string(x.action);
    EXPECT_EQ(x.version, y->version) << to_string(x.action);
    EXPECT_EQ(x.pos, y->pos) << to_string(x.action);
  }
  // Admission: at most P - s micro-batches in flight on stage s.
  for (int s = 0; s < 4; ++s) EXPECT_LE(an.stages[s].inflight_peak, 4 - s);
  // Simulated drift of the dynamic run = static analysis of the order it realised.
  TraceMetrics m = compute_metrics(dyn.trace);
  for (int s = 0; s < 4; ++s) EXPECT_EQ(m.stages[s].max_drift, an.stages[s].max_drift);
}

TEST(DynamicPolicy, AStragglerSetsTheStepTimeOfBothOrders) {
  // Stage 2 is 1.8x slower: in steady state every stage waits for it, so a step of M
  // micro-batches takes M * 1.8 * (F + B) under the static order. The greedy policy cannot
  // beat that bound; here it loses two cycles per step (75.6 vs 64.8): it runs stage 2's
  // backwards as soon as they arrive, which starves the stages after it of forwards.
  CostModel c = uniform(1, 2);
  SimOptions o;
  o.stragglers = {{2, 1.8}};
  const int P = 6, M = 12;
  SimResult dyn = simulate_paci_policy(P, M, 8, M, c, o);
  SimRun stat = run(gen("paci", P, M, 8), c, o);
  TraceMetrics md = compute_metrics(dyn.trace);
  const double want = M * 1.8 * 3;
  EXPECT_NEAR(stat.m.step_time, want, 1e-9);
  EXPECT_GE(md.step_time, want - 1e-9);
  EXPECT_NEAR(md.step_time, 14 * 1.8 * 3, 1e-9);
  EXPECT_EQ(validate(dyn.realised).stages.size(), static_cast<size_t>(P));
}

}  // namespace
}  // namespace paci::testing
