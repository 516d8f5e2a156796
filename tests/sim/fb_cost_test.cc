// The overlapped F&B action in the cost model and the simulator: its cost `fb` (flag, file,
// default), its memory and transfers, its versions in traces.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schedules/gen/generators.h"
#include "schedules/trace/chrome.h"
#include "tests/sim/test_util.h"

namespace paci::testing {
namespace {

using ::testing::HasSubstr;

TEST(FbCost, GivenByFlagAndFileOrElseForwardPlusBackward) {
  CostModel c = parse_uniform_cost("f=1,b=2,fb=2.5");
  EXPECT_EQ(c.stages[0].fb, 2.5);
  EXPECT_EQ(c.duration(FwdBwd(0, 1, 1, 0)), 2.5);
  EXPECT_THAT(c.description, HasSubstr("fb=2.5"));
  CostModel back = cost_from_json(cost_to_json(c), "c.json");
  EXPECT_EQ(back.stages[0].fb, 2.5);
  // Not given: the forward of its stage plus the backward of the other, no overlap gain.
  CostModel d = cost_from_json(R"({"format": "paci-cost", "version": 1,
      "stages": [{"f": 1, "b": 2}, {"f": 3, "b": 5}]})", "d.json");
  EXPECT_EQ(d.stages[0].fb, kFbNotGiven);
  EXPECT_EQ(d.duration(FwdBwd(0, 1, 1, 0)), 1 + 5);
  EXPECT_THAT(cost_to_json(d), ::testing::Not(HasSubstr("\"fb\"")));
  // Halved per stage of a V device, like every duration.
  EXPECT_EQ(per_chunk(c, 2).stages[0].fb, 1.25);
  try {
    cost_from_json(R"({"format": "paci-cost", "version": 1, "default": {"fb": -2}})", "e.json");
    FAIL();
  } catch (const CostError& e) {
    EXPECT_THAT(e.what(), HasSubstr("fb"));
  }
  EXPECT_THROW(parse_uniform_cost("f=1,fb=x"), CostError);
}

TEST(FbCost, AnOverlappedPairTakesFbAndFreesItsBackwardsActivations) {
  // Two stages on one device: the pair 0F1 & 1B0 waits for both halves' inputs and takes fb;
  // it takes stage 0's activations of mb 1 when it starts and frees stage 1's of mb 0 at its end.
  Schedule s;
  s.name = "pair";
  s.spec = {1, 2, 2, 1};
  s.accum = 2;
  s.stage_device = {0, 0};
  s.programs = {{Fwd(0, 0), Fwd(1, 0), FwdBwd(0, 1, 1, 0), Fwd(1, 1), Bwd(1, 1), Bwd(0, 0), Bwd(0, 1),
                 Opt(0), Opt(1)}};
  validate(s);
  CostModel c = uniform(1, 2);
  c.stages[0].fb = 2.5;
  SimRun r = run(s, c);
  // F F (2) + FB 2.5 + F 1 + B 2 + B 2 + B 2 = 11.5
  EXPECT_NEAR(r.m.makespan, 11.5, 1e-12);
  // Peak: after 0F0, 1F0 (2 slots) the pair adds 0's mb 1 and frees 1's mb 0 at its end; 1F1
  // makes 3 again.
  EXPECT_NEAR(r.m.devices[0].peak_dynamic, 3, 1e-12);
  // The trace keeps both halves' versions through the Perfetto format.
  Trace t = trace_from_chrome_json(to_chrome_json(r.sim.trace), "t.json");
  int fb = 0;
  for (const auto& a : t.actions)
    if (a.action.kind == ActionKind::FB) {
      ++fb;
      EXPECT_EQ(a.action, FwdBwd(0, 1, 1, 0));
      EXPECT_EQ(a.version, 0);
      EXPECT_EQ(a.version_b, 0);
    }
  EXPECT_EQ(fb, 1);
}

TEST(FbCost, DualPipeVGainsWhenTheOverlapHidesTime) {
  // fb < f + b shortens the step by the pairs on the critical path; fb = f + b is the plain
  // sequence of its halves.
  const double plain = run(gen("dualpipev", 4, 16, 1), [] {
                         CostModel c = uniform(1, 2);
                         c.stages[0].fb = 3;
                         return c;
                       }()).m.makespan;
  const double unset = run(gen("dualpipev", 4, 16, 1), uniform(1, 2)).m.makespan;
  const double overlapped = run(gen("dualpipev", 4, 16, 1), [] {
                              CostModel c = uniform(1, 2);
                              c.stages[0].fb = 2.5;
                              return c;
                            }()).m.makespan;
  EXPECT_EQ(plain, unset);
  EXPECT_LT(overlapped, plain);
}

}  // namespace
}  // namespace paci::testing
