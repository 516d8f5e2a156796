// Closed forms with uniform stage costs and no communication (REFERENCE.md, "Baselines").
#include <algorithm>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "schedules/gen/generators.h"

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


// Idle seconds of each device over the run: makespan - its busy time.
std::vector<double> idle(const SimRun& r) {
  std::vector<double> out;
  for (const auto& d : r.m.devices) out.push_back(r.m.makespan - d.busy);
  return out;
}

double max_of(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

// Uniform costs per stage with an overlapped F&B cost.
CostModel uniform_fb(double f, double b, double fb) {
  CostModel c = uniform(f, b);
  c.stages[0].fb = fb;
  return c;
}

TEST(ClosedForms, DualPipeVBubbleIsTheDualPipeReadmesFormula) {
  // DualPipe README: bubble (PP/2 - 1)(F&B + B - 3W) for PP stages; DualPipeV runs PP = 2P
  // stages on P devices, so (P - 1)(FB + B - 3W) per step, with F, B, W, FB of one stage. It
  // is the idle time of the devices that idle most (the last two) when F = I = W (the
  // zero-bubble papers' assumption) and B <= FB <= F + B (an overlapped pair takes no longer
  // than its halves one after the other, and no less than its backward). Outside that regime
  // it is only an estimate (next test).
  for (int P = 2; P <= 6; ++P)
    for (int M = 2 * P; M <= 2 * P + 7; M += 7)
      for (auto [f, b, fb] : {std::tuple{1.0, 2.0, 3.0}, {1.0, 2.0, 2.0}, {1.0, 2.0, 2.5},
                              {0.5, 1.0, 1.0}, {0.5, 1.0, 1.2}, {0.5, 1.0, 1.5}}) {
        SimRun r = run(gen("dualpipev", P, M, 1), uniform_fb(f, b, fb));
        SCOPED_TRACE(::testing::Message() << "P=" << P << " M=" << M << " f=" << f << " b=" << b
                                          << " fb=" << fb);
        const double w = b / 2;
        EXPECT_NEAR(max_of(idle(r)), (P - 1) * (fb + b - 3 * w), 1e-9);
      }
}

TEST(ClosedForms, DualPipeVFormulaIsAnEstimateOutsideItsRegime) {
  // Measured against the formula where I != W (the simulator's own value, a regression check).
  SimRun r = run(gen("dualpipev", 4, 12, 1), [] {
    CostModel c = uniform(0.5, 1.0, 0.3);  // i = 0.7, w = 0.3
    c.stages[0].fb = 1.2;
    return c;
  }());
  const double formula = 3 * (1.2 + 1.0 - 3 * 0.3);  // 3.9
  EXPECT_NEAR(max_of(idle(r)), 3.4, 1e-9);             // measured: 0.5 less
  EXPECT_LT(max_of(idle(r)), formula);
}

TEST(ClosedForms, ZbVIdlesOnlyForThePipelineFillWhenFEqualsIEqualsW) {
  // ZB-V (arXiv 2401.10241): bubble (p-1)(T_F + T_B - 2T_W) = 0 when F = B = W. What no
  // schedule avoids is the fill: the last device cannot start before P-1 forwards ran. zb-v
  // idles exactly that, (P-1) F, on every device and no more, with activations within
  // 1F1B's peak (checked in tests/schedules/new_schedules_test.cc).
  // (M >= 2P - 1: the handcrafted order; below that the list scheduler's, which can idle more.)
  for (int P = 1; P <= 8; ++P)
    for (int M : {2 * P - 1, 2 * P, 3 * P, 4 * P + 1}) {
      SimRun r = run(gen("zb-v", P, M, 1), uniform(1, 2));
      SCOPED_TRACE(::testing::Message() << "P=" << P << " M=" << M);
      for (double x : idle(r)) EXPECT_NEAR(x, (P - 1) * 1.0, 1e-9);
      EXPECT_NEAR(r.m.makespan, 2 * M * 3.0 + (P - 1), 1e-9);
    }
}

TEST(ClosedForms, VShapesTradeBubbleForMemory) {
  // Less activation memory, more bubble: zb-v <= v-half <= v-min, and zb-v below 1F1B's
  // (P-1)/(M+P-1) with the same memory. Per-device costs f = 1, b = 2 (half per stage).
  for (int P : {4, 8})
    for (int M : {2 * P, 4 * P}) {
      const CostModel dev = uniform(1, 2), chunk = per_chunk(dev, 2);
      const double zbv = run(gen("zb-v", P, M, 1), chunk).m.bubble;
      const double half = run(gen("v-half", P, M, 1), chunk).m.bubble;
      const double vmin = run(gen("v-min", P, M, 1), chunk).m.bubble;
      const double f1b = run(gen("1f1b", P, M, 1), dev).m.bubble;
      SCOPED_TRACE(::testing::Message() << "P=" << P << " M=" << M);
      EXPECT_LE(zbv, half);
      EXPECT_LE(half, vmin);
      EXPECT_LT(zbv, f1b);
      EXPECT_NEAR(f1b, (P - 1.0) / (M + P - 1), 1e-9);
    }
}

TEST(ClosedForms, LoopedBfsBubbleIsDminus1OverVMplusDminus1) {
  for (int D : {2, 3, 4})
    for (int v : {1, 2, 3})
      for (int M : {D, 2 * D, 8}) {
        if (M < D) continue;
        SimRun r = run(gen("looped-bfs", D, M, 2, v), uniform(1, 2));
        SCOPED_TRACE(::testing::Message() << "D=" << D << " v=" << v << " M=" << M);
        EXPECT_NEAR(r.m.bubble, (D - 1.0) / (v * M + D - 1), 1e-9);
      }
}

TEST(ClosedForms, InterleavedZbBubbleIsBelowInterleaved1f1bs) {
  for (int P : {2, 4})
    for (int v : {2, 3})
      for (int M : {P, 2 * P, 4 * P}) {
        const double zb = run(gen("interleaved-zb", P, M, 1, v), uniform(1, 2)).m.bubble;
        const double base = run(gen("interleaved-1f1b", P, M, 1, v), uniform(1, 2)).m.bubble;
        EXPECT_LE(zb, base + 1e-12) << "P=" << P << " v=" << v << " M=" << M;
      }
}

TEST(ClosedForms, PaciVHasNoSteadyBubbleAndEvensActivationsOut) {
  for (int P : {2, 3, 4, 6, 8})
    for (int a : {1, 2, 4, 8}) {
      const int M = 16, N = 8;
      const CostModel dev = uniform(1, 2), chunk = per_chunk(dev, 2);
      SimRun v = run(gen("paci-v", P, M, N, 0, a), chunk);
      SimRun p = run(gen("paci", P, M, N, 0, a), dev);
      SCOPED_TRACE(::testing::Message() << "P=" << P << " a=" << a);
      ASSERT_TRUE(v.m.steady);
      EXPECT_NEAR(v.m.steady_bubble, 0, kEps);
      EXPECT_NEAR(v.m.step_time, M * 3.0, kEps);  // every device busy: PACI's ideal
      // The pattern's times are feasible for the programs' order, and the simulator starts
      // each action as early as it can, so the run ends no later than the pattern's last
      // pass: 6 (T - 1) + L_0 units of half a device's F (the chunk's F).
      const PaciVPattern pat = paci_v_pattern(P);
      EXPECT_LE(v.m.makespan, 0.5 * (6 * (M * N - 1) + pat.b[0] + 2 - pat.f[0]) + kEps);
      // Activations (a device's share per micro-batch = 1 slot, a paci-v stage half of it):
      // paci's device d peaks at P - d; paci-v's at half its pattern's stage count, evenly
      // (within one slot of each other), and its fullest device below paci's first from P = 3.
      const PaciVPattern pattern = paci_v_pattern(P);
      double most = 0, least = 1e9;
      for (int d = 0; d < P; ++d) {
        EXPECT_NEAR(v.m.devices[d].peak_dynamic, pattern.device_peak[d] / 2.0, kEps) << "device " << d;
        EXPECT_NEAR(p.m.devices[d].peak_dynamic, P - d, kEps) << "device " << d;
        most = std::max(most, v.m.devices[d].peak_dynamic);
        least = std::min(least, v.m.devices[d].peak_dynamic);
      }
      EXPECT_LE(most - least, 1.0);
      if (P >= 3) EXPECT_LT(most, p.m.devices[0].peak_dynamic);
      else EXPECT_EQ(most, p.m.devices[0].peak_dynamic);
      // The simulator's recorded versions give the drift the IR declares.
      for (int st = 0; st < 2 * P; ++st)
        EXPECT_EQ(v.m.stages[st].max_drift, (paci_v_cap(P, st) - 1 + a - 1) / a) << "stage " << st;
    }
}

}  // namespace
}  // namespace paci::testing
