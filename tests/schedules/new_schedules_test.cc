// The V-shaped, DualPipeV, interleaved zero-bubble, looped BFS and paci-v schedules over a
// grid of P, M, N (and v, a): each validates (structure, no cycle, no deadlock when devices
// run in order with blocking receives, OPTs consuming whole batches, declared bounds), and
// the static facts in each generator's doc comment hold: updates, drift, activation caps.
// The timing closed forms are in tests/sim/closed_forms_test.cc.
#include <algorithm>
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
          // Every device holds 2P stage activations at most, P device shares: PACI's first
          // device, evened out (PACI's device d holds P - d).
          Analysis pa = validate(make_schedule("paci", {P, M, N, std::nullopt, a}));
          for (int d = 0; d < P; ++d) {
            EXPECT_LE(an.device_inflight_peak[d], 2 * std::min(P, T));
            if (T >= 4 * P) {
              EXPECT_EQ(an.device_inflight_peak[d], 2 * P) << "device " << d;
            }
          }
          EXPECT_LE(max_device_peak(an), 2 * max_device_peak(pa));  // in stages of half size
        }
      }
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
  EXPECT_THAT(table, HasSubstr("     0      2                8          4.00"));
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
