// Closed forms with uniform stage costs and no communication (REFERENCE.md, "Baselines").
#include <gtest/gtest.h>

#include "tests/sim/test_util.h"

namespace paci::testing {
namespace {

constexpr double kEps = 1e-9;

TEST(ClosedForms, GpipeAnd1f1bBubbleIsPminus1OverMplusPminus1) {
  for (const char* name : {"gpipe", "1f1b"})
    for (int P : {2, 4, 8})
      for (int M : {1, 3, 8, 16})
        for (double b : {1.0, 2.0}) {
          SimRun r = run(gen(name, P, M, 3), uniform(1, b));
          const double want = static_cast<double>(P - 1) / (M + P - 1);
          SCOPED_TRACE(::testing::Message() << name << " P=" << P << " M=" << M << " b=" << b);
          EXPECT_NEAR(r.m.makespan, 3 * (M + P - 1) * (1 + b), kEps);
          EXPECT_NEAR(r.m.bubble, want, kEps);
          for (const auto& d : r.m.devices) EXPECT_NEAR(d.bubble, want, kEps);
          // Every step is alike, so the steady state has the same bubble.
          if (r.m.steady) {
            EXPECT_NEAR(r.m.steady_bubble, want, kEps);
          }
          EXPECT_NEAR(r.m.step_time, (M + P - 1) * (1 + b), kEps);
        }
}

TEST(ClosedForms, PaciSteadyStateHasNoBubbleAndApproachesIdeal) {
  const int P = 8, M = 16;
  double prev_excess = -1;
  for (int N : {4, 8, 16, 32})
    for (int a : {4, 8, 16}) {
      if (a != M) continue;
      SimRun r = run(gen("paci", P, M, N, 0, a), uniform(1, 2));
      SCOPED_TRACE(::testing::Message() << "N=" << N << " a=" << a);
      ASSERT_TRUE(r.m.steady);
      EXPECT_NEAR(r.m.steady_bubble, 0, kEps);
      for (const auto& d : r.m.devices) EXPECT_NEAR(d.steady_bubble, 0, kEps);
      // Ideal: every device busy all the time, N*M*(F+B). The excess is the one fill and
      // drain, (P-1)(F+B), whatever N: so makespan / ideal -> 1.
      const double ideal = N * M * 3.0;
      EXPECT_NEAR(r.m.makespan - ideal, (P - 1) * 3.0, kEps);
      if (prev_excess >= 0) {
        EXPECT_LT(r.m.makespan / ideal, prev_excess);
      }
      prev_excess = r.m.makespan / ideal;
      EXPECT_NEAR(r.m.step_time, M * 3.0, kEps);
    }
  for (int a : {1, 2, 4, 8}) {
    SimRun r = run(gen("paci", P, M, 8, 0, a), uniform(1, 2));
    EXPECT_NEAR(r.m.steady_bubble, 0, kEps) << "a=" << a;
    EXPECT_NEAR(r.m.step_time, M * 3.0, kEps) << "a=" << a;
  }
}

TEST(ClosedForms, InterleavedBubbleIsPminus1OverVMOfIdeal) {
  for (int P : {2, 4})
    for (int v : {2, 3})
      for (int M : {P, 2 * P, 4 * P}) {
        // Each chunk is 1/v of a stage: F = 1/v, B = 2/v.
        SimRun r = run(gen("interleaved-1f1b", P, M, 2, v), uniform(1.0 / v, 2.0 / v));
        SCOPED_TRACE(::testing::Message() << "P=" << P << " v=" << v << " M=" << M);
        const double ideal = 2 * M * 3.0;  // per device, 2 steps
        EXPECT_NEAR((r.m.makespan - ideal) / ideal, static_cast<double>(P - 1) / (v * M), kEps);
      }
}

TEST(ClosedForms, ZbH1BubbleIsAThirdOf1f1bWhenFEqualsIEqualsW) {
  for (int P : {2, 4, 8})
    for (int M : {P, 2 * P, 3 * P + 1}) {
      CostModel c = uniform(1, 2, 1);  // F = I = W = 1
      SimRun zb = run(gen("zb-h1", P, M, 2), c);
      SimRun ref = run(gen("1f1b", P, M, 2), c);
      SCOPED_TRACE(::testing::Message() << "P=" << P << " M=" << M);
      // Same work, so the bubble time (idle per device) compares directly.
      const double idle_zb = zb.m.makespan * zb.m.bubble, idle_1f1b = ref.m.makespan * ref.m.bubble;
      EXPECT_NEAR(idle_1f1b, 2 * (P - 1) * 3.0, kEps);
      EXPECT_NEAR(idle_zb, idle_1f1b / 3, kEps);
    }
}

TEST(ClosedForms, TooFewStepsHaveNoSteadyState) {
  // 1f1b with P = 4, M = 4: k = ceil(3/4) = 1 update at each end, so N = 2 has no window
  // and N = 3 has one step in it.
  SimRun two = run(gen("1f1b", 4, 4, 2), uniform(1, 2));
  EXPECT_FALSE(two.m.steady);
  EXPECT_DOUBLE_EQ(two.m.step_time, two.m.makespan / 2);
  EXPECT_DOUBLE_EQ(two.m.steady_bubble, two.m.bubble);
  SimRun three = run(gen("1f1b", 4, 4, 3), uniform(1, 2));
  EXPECT_TRUE(three.m.steady);
  EXPECT_DOUBLE_EQ(three.m.step_time, 7 * 3.0);
  EXPECT_DOUBLE_EQ(three.m.samples_per_second, 4 / 21.0);
}

TEST(ClosedForms, PaciDriftPerStageIsThePapersTable) {
  // REFERENCE.md, P = 8: max drift per stage for a = 1, 2, 4, 8, measured on simulated versions.
  const std::vector<std::pair<int, std::vector<int>>> table = {
      {1, {7, 6, 5, 4, 3, 2, 1, 0}}, {2, {4, 3, 3, 2, 2, 1, 1, 0}},
      {4, {2, 2, 2, 1, 1, 1, 1, 0}}, {8, {1, 1, 1, 1, 1, 1, 1, 0}}};
  for (const auto& [a, want] : table) {
    SimRun r = run(gen("paci", 8, 16, 4, 0, a), uniform(1, 2));
    std::vector<int> got;
    for (const auto& s : r.m.stages) got.push_back(s.max_drift);
    EXPECT_EQ(got, want) << "a=" << a;
  }
}

TEST(ClosedForms, PeakActivationSlotsMatchTheIr) {
  for (const char* name : {"gpipe", "1f1b", "paci", "zb-h1", "pipedream", "pipedream-2bw"}) {
    Schedule s = gen(name, 4, 8, 3);
    Analysis an = validate(s);
    SimRun r = run(s, uniform(1, 2));
    for (int st = 0; st < 4; ++st)
      EXPECT_NEAR(r.m.devices[st].peak_dynamic, an.stages[st].inflight_peak, kEps)
          << name << " stage " << st;
  }
}

}  // namespace
}  // namespace paci::testing
