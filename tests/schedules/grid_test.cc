// Every schedule of the library over a grid of P, M, N (and v, a): it validates, and the
// closed forms stated in each generator's doc comment (schedules/gen/) and in the README's
// schedule table hold exactly.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "schedules/registry.h"
#include "schedules/validate.h"

namespace paci {
namespace {

// The grid: every P in 1..16, micro-batch counts that cover small, odd, prime, and
// power-of-two values up to 64, and N in 1..4.
const std::vector<int> kMicrobatches = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 48, 63, 64};

int ceil_div(int a, int b) { return (a + b - 1) / b; }

std::string where(const Schedule& s, int stage) {
  return fmt::format("{} P={} M={} N={} accum={} stage {}", s.name, s.spec.devices,
                     s.spec.microbatches, s.spec.steps, s.accum, stage);
}

TEST(ScheduleGrid, SynchronousSchedulesValidateWithoutDrift) {
  for (const char* name : {"gpipe", "1f1b", "zb-h1"})
    for (int P = 1; P <= 16; ++P)
      for (int M : kMicrobatches)
        for (int N = 1; N <= 4; ++N) {
          Schedule s = make_schedule(name, {P, M, N});
          Analysis a = validate(s);
          for (int st = 0; st < P; ++st) {
            const StageFacts& f = a.stages[st];
            ASSERT_EQ(f.max_drift, 0) << where(s, st);
            ASSERT_EQ(f.max_delay, 0) << where(s, st);
            ASSERT_EQ(f.weight_copies, 1) << where(s, st);
            ASSERT_EQ(f.updates, N) << where(s, st);
            std::string n = name;
            if (n == "gpipe") {
              ASSERT_EQ(f.inflight_peak, M) << where(s, st);
            }
            if (n == "1f1b") {
              ASSERT_EQ(f.inflight_peak, std::min(P - st, M)) << where(s, st);
            }
            if (n == "zb-h1") {
              ASSERT_LE(f.inflight_peak, std::min(P, M)) << where(s, st);
            }
          }
        }
}

TEST(ScheduleGrid, InterleavedValidatesWithoutDrift) {
  for (int P = 1; P <= 16; ++P)
    for (int v = 1; v <= 4; ++v)
      for (int M = P; M <= 64; M += P)
        for (int N = 1; N <= 4; N += 3) {
          Schedule s = make_schedule("interleaved-1f1b", {P, M, N, v});
          ASSERT_EQ(s.stages(), P * v);
          Analysis a = validate(s);
          for (int st = 0; st < P * v; ++st) {
            ASSERT_EQ(a.stages[st].max_drift, 0) << where(s, st) << " v=" << v;
            ASSERT_EQ(a.stages[st].updates, N) << where(s, st) << " v=" << v;
          }
        }
}

TEST(ScheduleGrid, PaciDriftIsExactlyCeilOfDistanceOverA) {
  for (int P = 1; P <= 16; ++P)
    for (int M : kMicrobatches)
      for (int N = 1; N <= 4; ++N) {
        const int T = M * N;
        std::vector<int> windows = {M, 1};
        for (int a : {2, 3, 4, 8}) if (T % a == 0 && a != M) windows.push_back(a);
        for (int a : windows) {
          Schedule s = make_schedule("paci", {P, M, N, std::nullopt, a});
          Analysis an = validate(s);
          const int S = P;
          const int lo = ceil_div(S - 1, a) * a;
          for (int st = 0; st < P; ++st) {
            const int k = P - 1 - st;  // forwards a stage runs ahead of its backward
            const StageFacts& f = an.stages[st];
            ASSERT_LE(f.max_drift, ceil_div(k, a)) << where(s, st);
            if (T >= k + a) {
              ASSERT_EQ(f.max_drift, ceil_div(k, a)) << where(s, st);
            }
            if (T - lo >= a) {
              ASSERT_EQ(f.steady_mean_drift, static_cast<double>(k) / a) << where(s, st);
            }
            ASSERT_EQ(f.inflight_peak, std::min(P - st, T)) << where(s, st);
            ASSERT_EQ(f.weight_copies, 1) << where(s, st);
            ASSERT_EQ(f.updates, T / a) << where(s, st);
            // The paper's version formulas, micro-batch by micro-batch.
            for (int i = 0; i < T; ++i) {
              const MicrobatchFacts& m = an.mb[st][i];
              ASSERT_EQ(m.v_fwd, std::max(0, i >= k ? (i - k) / a : 0)) << where(s, st) << " mb " << i;
              ASSERT_EQ(m.v_bwd, i / a) << where(s, st) << " mb " << i;
              ASSERT_EQ(m.opt, i / a) << where(s, st) << " mb " << i;
            }
          }
          ASSERT_EQ(an.stages[P - 1].max_drift, 0);
        }
      }
}

TEST(ScheduleGrid, PaciMatchesPaperTableForEightStages) {
  // REFERENCE.md: max drift per stage for P = 8.
  const std::vector<std::pair<int, std::vector<int>>> table = {
      {1, {7, 6, 5, 4, 3, 2, 1, 0}}, {2, {4, 3, 3, 2, 2, 1, 1, 0}}, {4, {2, 2, 2, 1, 1, 1, 1, 0}},
      {8, {1, 1, 1, 1, 1, 1, 1, 0}}, {16, {1, 1, 1, 1, 1, 1, 1, 0}}};
  for (const auto& [a, expected] : table) {
    Analysis an = validate(make_schedule("paci", {8, 16, 4, std::nullopt, a}));
    for (int st = 0; st < 8; ++st) EXPECT_EQ(an.stages[st].max_drift, expected[st]) << "a=" << a << " stage " << st;
  }
}

TEST(ScheduleGrid, PipedreamStashesOneVersionPerInFlightMicrobatch) {
  for (int P = 1; P <= 16; ++P)
    for (int M : kMicrobatches)
      for (int N = 1; N <= 4; ++N) {
        Schedule s = make_schedule("pipedream", {P, M, N});
        Analysis an = validate(s);
        const int T = M * N;
        for (int st = 0; st < P; ++st) {
          const int k = P - 1 - st;
          const StageFacts& f = an.stages[st];
          ASSERT_EQ(f.max_drift, 0) << where(s, st);
          ASSERT_EQ(f.updates, T) << where(s, st);
          ASSERT_LE(f.weight_copies, P - st) << where(s, st);
          if (T > 2 * k) {
            ASSERT_EQ(f.weight_copies, P - st) << where(s, st);
            ASSERT_EQ(f.max_delay, k) << where(s, st);
          }
        }
      }
}

TEST(ScheduleGrid, PipeDream2BWHasDelayExactlyOne) {
  for (int P = 1; P <= 16; ++P)
    for (int M : kMicrobatches) {
      if (M < P - 1) continue;
      for (int N = 1; N <= 4; ++N) {
        Schedule s = make_schedule("pipedream-2bw", {P, M, N});
        Analysis an = validate(s);
        for (int st = 0; st < P; ++st) {
          ASSERT_LE(an.stages[st].weight_copies, 2) << where(s, st);
          ASSERT_EQ(an.stages[st].max_drift, 0) << where(s, st);
          for (int i = 0; i < M * N; ++i)
            ASSERT_EQ(an.mb[st][i].delay, i < M ? 0 : 1) << where(s, st) << " mb " << i;
        }
      }
    }
}

TEST(ScheduleGrid, PaciWithOneStageIsOneF1B) {
  // With P = 1 and a = M both run F, B alternately with an OPT after every M backwards.
  for (int M : {1, 4, 7})
    for (int N : {1, 3}) {
      Schedule paci = make_schedule("paci", {1, M, N});
      Schedule f1b = make_schedule("1f1b", {1, M, N});
      EXPECT_EQ(paci.programs, f1b.programs) << "M=" << M << " N=" << N;
    }
}

}  // namespace
}  // namespace paci
