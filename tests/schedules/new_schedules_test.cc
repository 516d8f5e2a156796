// The V-shaped, DualPipeV, interleaved zero-bubble, looped BFS and paci-v schedules over a
// grid of P, M, N (and v, a): each validates (structure, no cycle, no deadlock when devices
// run in order with blocking receives, OPTs consuming whole batches, declared bounds), and
// the static facts in each generator's doc comment hold: updates, drift, activation caps.
// The timing closed forms are in tests/sim/closed_forms_test.cc.
#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schedules/formats.h"
#include "schedules/gen/generators.h"
#include "schedules/registry.h"
#include "schedules/render.h"
#include "schedules/validate.h"

namespace paci {
namespace {

using ::testing::HasSubstr;

const std::vector<int> kMicrobatches = {1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 24, 32};

int ceil_div(int a, int b) { return (a + b - 1) / b; }

std::string where(const Schedule& s) {
  return fmt::format("{} P={} v={} M={} N={} a={}", s.name, s.spec.devices, s.spec.virtual_stages,
                     s.spec.microbatches, s.spec.steps, s.accum);
}

// A synchronous (flushed) schedule: every stage updates once per step, no drift, no delay,
// one weight copy. Returns the analysis.
Analysis expect_synchronous(const Schedule& s) {
  Analysis a = validate(s);
  for (int st = 0; st < s.stages(); ++st) {
    const StageFacts& f = a.stages[st];
    EXPECT_EQ(f.updates, s.spec.steps) << where(s) << " stage " << st;
    EXPECT_EQ(f.max_drift, 0) << where(s) << " stage " << st;
    EXPECT_EQ(f.max_delay, 0) << where(s) << " stage " << st;
    EXPECT_EQ(f.weight_copies, 1) << where(s) << " stage " << st;
  }
  return a;
}

int max_device_peak(const Analysis& a) {
  return *std::max_element(a.device_inflight_peak.begin(), a.device_inflight_peak.end());
}

TEST(VPlacement, DeviceDHoldsStagesDAndTwoDMinusOneMinusD) {
  EXPECT_EQ(v_placement(1), (std::vector<int>{0, 0}));
  EXPECT_EQ(v_placement(4), (std::vector<int>{0, 1, 2, 3, 3, 2, 1, 0}));
}

TEST(NewSchedules, VShapedZeroBubbleFamilyValidatesWithinItsMemoryCaps) {
  for (int P = 1; P <= 8; ++P)
    for (int M : kMicrobatches)
      for (int N = 1; N <= 3; N += 2) {
        struct Case { const char* name; int cap; };
        // Caps in stage activations per device; a stage is half a device's share, so 1F1B's
        // first-device peak of min(P, M) shares is 2 min(P, M) stage activations.
        for (Case c : {Case{"zb-v", zb_v_cap(P)}, Case{"v-half", v_half_cap(P)}, Case{"v-min", v_min_cap(P)}}) {
          Schedule s = make_schedule(c.name, {P, M, N});
          SCOPED_TRACE(where(s));
          ASSERT_EQ(s.stage_device, v_placement(P));
          Analysis a = expect_synchronous(s);
          EXPECT_LE(max_device_peak(a), std::min(c.cap, 2 * M));
          if (std::string(c.name) == "zb-v") {
            EXPECT_LE(max_device_peak(a), 2 * std::min(P, M));  // 1F1B's peak, in stages
          }
        }
      }
}

TEST(NewSchedules, VHalfAndVMinCapsAreAboutAHalfAndAThirdOf1F1B) {
  // The paper's fractions of 1F1B's 2P stage activations, reached once M is large.
  for (int P : {3, 6, 9, 12, 24}) {
    EXPECT_EQ(v_half_cap(P), P + 1);
    EXPECT_EQ(v_min_cap(P), ceil_div(2 * P, 3) + 1);
    for (const char* name : {"v-half", "v-min"}) {
      Analysis a = validate(make_schedule(name, {P, 4 * P, 1}));
      EXPECT_EQ(max_device_peak(a), std::string(name) == "v-half" ? v_half_cap(P) : v_min_cap(P))
          << name << " P=" << P;
    }
  }
}

TEST(NewSchedules, DualPipeVValidatesHoldsAtMostPPPlusOneActivations) {
  for (int P = 1; P <= 8; ++P)
    for (int M = 2 * P; M <= 2 * P + 20; M += 3)
      for (int N = 1; N <= 3; N += 2) {
        Schedule s = make_schedule("dualpipev", {P, M, N});
        SCOPED_TRACE(where(s));
        ASSERT_EQ(s.stage_device, v_placement(P));
        Analysis a = expect_synchronous(s);
        // The DualPipe README's "PP+1" activations for PP = 2P stages.
        EXPECT_LE(max_device_peak(a), 2 * P + 1);
        int fb = 0;
        for (const auto& prog : s.programs)
          for (const Action& x : prog) fb += x.kind == ActionKind::FB;
        // Per device d: 2(M-2P+d+1) + (P-1-d) overlapped pairs, one fewer on the last device.
        int want = 0;
        for (int d = 0; d < P; ++d) want += 2 * (M - 2 * P + d + 1) + (P - 1 - d) - (d == P - 1);
        EXPECT_EQ(fb, want * N);
      }
  EXPECT_THROW(make_schedule("dualpipev", {4, 7, 1}), ParamError);
}

TEST(NewSchedules, InterleavedZbAndLoopedBfsValidate) {
  for (int P = 1; P <= 6; ++P)
    for (int v = 1; v <= 3; ++v)
      for (int M : {1, 2, 3, 4, 6, 8, 12, 16})
        for (int N = 1; N <= 3; N += 2) {
          Schedule zb = make_schedule("interleaved-zb", {P, M, N, v});
          SCOPED_TRACE(where(zb));
          Analysis a = expect_synchronous(zb);
          EXPECT_LE(max_device_peak(a), interleaved_zb_cap(P, M, v));
          if (M % P == 0) {  // interleaved-1f1b's own peak is the cap's reference
            Analysis ref = validate(make_schedule("interleaved-1f1b", {P, M, N, v}));
            EXPECT_LE(max_device_peak(a), max_device_peak(ref));
          }
          Schedule bfs = make_schedule("looped-bfs", {P, M, N, v});
          Analysis b = expect_synchronous(bfs);
          for (int d = 0; d < P; ++d) EXPECT_EQ(b.device_inflight_peak[d], v * M);
          for (int st = 0; st < P * v; ++st) EXPECT_EQ(bfs.stage_device[st], st % P);
        }
}

TEST(NewSchedules, PaciVDriftEqualsItsDeclaredBoundAndMemoryIsEven) {
  for (int P = 1; P <= 8; ++P)
    for (int M : {1, 2, 4, 6, 8, 16})
      for (int N : {1, 2, 4}) {
        const int T = M * N;
        for (int a : {1, 2, 3, 4, M}) {
          if (T % a != 0) continue;
          Schedule s = make_schedule("paci-v", {P, M, N, std::nullopt, a});
          SCOPED_TRACE(where(s));
          ASSERT_EQ(s.stage_device, v_placement(P));
          Analysis an = validate(s);  // checks drift, delay and in-flight against the bounds
          for (int st = 0; st < 2 * P; ++st) {
            const int cap = std::min(T, paci_v_cap(P, st));
            const int bound = ceil_div(cap - 1, a);
            const StageFacts& f = an.stages[st];
            ASSERT_EQ(s.bounds.max_drift[st], bound);
            ASSERT_EQ(f.updates, T / a);
            ASSERT_EQ(f.weight_copies, 1);
            ASSERT_LE(f.max_drift, bound);
            // Reached once enough micro-batches run for the cap to fill and a window to pass.
            if (T >= 4 * P + 2 * a) {
              ASSERT_EQ(f.max_drift, bound) << "stage " << st;
              ASSERT_EQ(f.inflight_peak, cap) << "stage " << st;
            }
          }
          // Device d holds the pattern's device_peak[d] stage activations (half of a PACI
          // stage each) in steady state; the fullest device holds less than PACI's first
          // device (P full stages = 2P half stages) from P = 3 on, as much at P <= 2.
          Analysis pa = validate(make_schedule("paci", {P, M, N, std::nullopt, a}));
          const PaciVPattern pattern = paci_v_pattern(P);
          for (int d = 0; d < P; ++d) {
            EXPECT_LE(an.device_inflight_peak[d], pattern.device_peak[d]) << "device " << d;
            if (T >= 4 * P + 2 * a) EXPECT_EQ(an.device_inflight_peak[d], pattern.device_peak[d]) << "device " << d;
          }
          if (T >= 4 * P + 2 * a) {
            if (P >= 3) EXPECT_LT(max_device_peak(an), 2 * max_device_peak(pa));
            else EXPECT_EQ(max_device_peak(an), 2 * max_device_peak(pa));
          }
        }
      }
}

// An exhaustive search, written apart from the generator: every periodic gap-free order of
// a V pipeline with F = 1, B = 2 (each device's F(d), F(u), B(u), B(d) tiling a period of 6
// at integer phases; micro-batch 0's pass at the earliest times those phases allow) and the
// least activation peak of its fullest device. paci-v's search reaches it for D = 2..4; the
// generator's doc comment quotes these values.
int least_periodic_peak(int D) {
  const int S = 2 * D, len[4] = {1, 1, 2, 2};
  std::vector<std::array<int, 4>> tilings;  // phases of F(d), F(u), B(u), B(d)
  std::array<int, 3> rest = {1, 2, 3};
  do {
    for (int rot = 0; rot < 6; ++rot) {
      std::array<int, 4> t{};
      int at = rot;
      t[0] = at % 6;
      at += 1;
      for (int k : rest) {
        t[k] = at % 6;
        at += len[k];
      }
      tilings.push_back(t);
    }
  } while (std::next_permutation(rest.begin(), rest.end()));
  auto floor6 = [](int x) { return x >= 0 ? x / 6 : -((-x + 5) / 6); };
  int best = 1 << 30;
  std::vector<int> pick(D, 0);
  for (;;) {
    std::vector<int> f(S), b(S);
    int ready = 0;
    auto place = [&](int d, int k, int stage, std::vector<int>& out) {
      const int phase = tilings[pick[d]][k];
      const int t = ready + ((phase - ready) % 6 + 6) % 6;
      out[stage] = t;
      ready = t + len[k];
    };
    for (int s = 0; s < D; ++s) place(s, 0, s, f);
    for (int s = D; s < S; ++s) place(S - 1 - s, 1, s, f);
    for (int s = S - 1; s >= D; --s) place(S - 1 - s, 2, s, b);
    for (int s = D - 1; s >= 0; --s) place(s, 3, s, b);
    int worst = 0;
    for (int d = 0; d < D; ++d)
      for (int x = 0; x < 6; ++x) {
        int n = 0;
        for (int s : {d, S - 1 - d}) n += floor6(x - f[s]) - floor6(x - b[s] - 2);
        worst = std::max(worst, n);
      }
    best = std::min(best, worst);
    // Next combination; device 0's F(0) stays at phase 0 (a shift of time changes nothing).
    int d = 0;
    for (; d < D; ++d) {
      do ++pick[d];
      while (d == 0 && pick[d] < static_cast<int>(tilings.size()) && tilings[pick[d]][0] != 0);
      if (pick[d] < static_cast<int>(tilings.size())) break;
      pick[d] = 0;
    }
    if (d == D) break;
  }
  return best;
}

TEST(NewSchedules, PaciVReachesTheLeastPeakOfAnyPeriodicGapFreeOrder) {
  for (int D = 2; D <= 4; ++D) {
    const PaciVPattern p = paci_v_pattern(D);
    EXPECT_EQ(*std::max_element(p.device_peak.begin(), p.device_peak.end()), least_periodic_peak(D)) << "D=" << D;
  }
  EXPECT_EQ(least_periodic_peak(2), 4);  // PACI's 2 x 2: no periodic gap-free order beats it at P = 2
  EXPECT_EQ(least_periodic_peak(3), 5);  // below PACI's 6
}

TEST(NewSchedules, OverlappedActionRoundTripsThroughJsonAndPyTorchCsv) {
  Schedule s = make_schedule("dualpipev", {3, 8, 1});
  Schedule j = schedule_from_json(to_json(s), "x.json");
  EXPECT_EQ(j, s);
  const std::string csv = to_csv(s);
  EXPECT_THAT(csv, HasSubstr("(0F"));
  EXPECT_THAT(csv, HasSubstr(")OVERLAP_F_B"));
  Schedule c = schedule_from_csv(csv, "x.csv");
  EXPECT_EQ(c.programs, s.programs);
  EXPECT_EQ(c.stage_device, s.stage_device);
  validate(c);
  // An F&B cell is one action; its halves are both indexed, its string is PyTorch's.
  EXPECT_EQ(to_string(FwdBwd(0, 7, 7, 3)), "(0F7;7B3)OVERLAP_F_B");
  EXPECT_EQ(parse_action("(0F7;7B3)OVERLAP_F_B"), FwdBwd(0, 7, 7, 3));
  EXPECT_FALSE(parse_action("(0B7;7F3)OVERLAP_F_B"));
}

TEST(NewSchedules, AnOverlapOfAForwardWithItsOwnBackwardIsRefused) {
  Schedule s;
  s.name = "bad";
  s.spec = {1, 1, 1, 1};
  s.stage_device = {0};
  s.programs = {{FwdBwd(0, 0, 0, 0), Opt(0)}};
  try {
    validate(s);
    FAIL() << "validated";
  } catch (const ScheduleError& e) {
    EXPECT_THAT(e.what(), HasSubstr("overlaps the backward of its own forward"));
  }
}

TEST(NewSchedules, ShowPrintsActivationsPerDeviceInDeviceShares) {
  Schedule s = make_schedule("paci-v", {4, 8, 2, std::nullopt, 4});
  std::string table = render_stage_table(s, validate(s));
  EXPECT_THAT(table, HasSubstr("device shares"));
  EXPECT_THAT(table, HasSubstr("     0      2                6          3.00"));  // paci's device 0: 4.00
  std::string timeline = render_unit_timeline(make_schedule("dualpipev", {2, 4, 1}), 200);
  EXPECT_THAT(timeline, HasSubstr("&"));  // an F&B cell, e.g. 0F2&3B0
}

TEST(NewSchedules, ParametersOutOfRangeNameTheFlag) {
  try {
    make_schedule("zb-v", {4, 8, 1, 2});
    FAIL();
  } catch (const ParamError& e) {
    EXPECT_EQ(e.flag(), "--virtual");
  }
  try {
    make_schedule("paci-v", {4, 8, 1, std::nullopt, 3});
    FAIL();
  } catch (const ParamError& e) {
    EXPECT_EQ(e.flag(), "--accum");
  }
  try {
    make_schedule("looped-bfs", {4, 8, 1, 65});
    FAIL();
  } catch (const ParamError& e) {
    EXPECT_EQ(e.flag(), "--virtual");
  }
}

}  // namespace
}  // namespace paci
