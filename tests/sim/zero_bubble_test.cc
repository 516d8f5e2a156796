// zb-1p / zb-2p built from a cost model, and zb-h1 against 1F1B.
#include <gtest/gtest.h>

#include "sim/zero_bubble.h"
#include "tests/sim/test_util.h"

namespace paci::testing {
namespace {

TEST(ZeroBubble, Zb2pBubbleNearZeroWithAtMostTwice1f1bActivations) {
  for (int P : {4, 8})
    for (int M : {2 * P, 4 * P}) {
      CostModel c = uniform(1, 2, 1);
      Schedule zb = make_zero_bubble("zb-2p", P, M, 3, c);
      validate(zb);
      SimRun r = run(zb, c);
      SimRun ref = run(gen("1f1b", P, M, 3), c);
      double ref_peak = 0, zb_peak = 0;
      for (int d = 0; d < P; ++d) {
        ref_peak = std::max(ref_peak, ref.m.devices[d].peak_dynamic);
        zb_peak = std::max(zb_peak, r.m.devices[d].peak_dynamic);
      }
      SCOPED_TRACE(::testing::Message() << "P=" << P << " M=" << M << " zb-2p bubble " << r.m.bubble
                                        << " 1f1b " << ref.m.bubble);
      EXPECT_LE(zb_peak, 2 * ref_peak + 1e-9);
      EXPECT_LT(r.m.bubble, 0.25 * ref.m.bubble);
      EXPECT_LT(r.m.bubble, 0.05);
    }
}

TEST(ZeroBubble, Zb1pKeeps1f1bMemoryAndBeats1f1b) {
  for (int P : {4, 8}) {
    const int M = 3 * P;
    CostModel c = uniform(1, 2, 1);
    Schedule zb = make_zero_bubble("zb-1p", P, M, 2, c);
    validate(zb);
    SimRun r = run(zb, c);
    SimRun ref = run(gen("1f1b", P, M, 2), c);
    for (int d = 0; d < P; ++d) EXPECT_LE(r.m.devices[d].peak_dynamic, std::min(P, M) + 1e-9);
    EXPECT_LT(r.m.makespan, ref.m.makespan);
    // At least as good as the handcrafted zb-h1 (same memory).
    SimRun h1 = run(gen("zb-h1", P, M, 2), c);
    EXPECT_LE(r.m.makespan, h1.m.makespan + 1e-9) << "P=" << P;
  }
}

TEST(ZeroBubble, MemoryLimitThatCannotFitIsAClearError) {
  CostModel c = uniform(1, 2, 1);
  c.memory_unit = "B";
  c.stages[0].activation_bytes = 1 << 30;  // 1 GiB per micro-batch
  c.stages[0].weight_bytes = 2.0 * (1 << 30);
  // 1F1B's peak on 4 stages is 4 micro-batches: zb-2p needs 2 + 8 = 10 GiB.
  EXPECT_NO_THROW(make_zero_bubble("zb-1p", 4, 16, 1, c, 6.5 * (1 << 30)));
  try {
    make_zero_bubble("zb-2p", 4, 16, 1, c, 6.5 * (1 << 30));
    FAIL() << "expected CostError";
  } catch (const CostError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("zb-2p does not fit: stage 0 needs 10.000 GiB"), std::string::npos) << what;
    EXPECT_NE(what.find("limit is 6.500 GiB"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace paci::testing
