// The contention term of the cost model (sim/cost.h): every simulated action takes its cost
// times (1 + contention[kind] x the devices already computing when it starts), on every
// schedule; it is off (the trace unchanged) at 0; and it survives the cost file.
#include <gtest/gtest.h>

#include "tests/sim/test_util.h"

namespace paci {
namespace {

using testing::gen;
using testing::uniform;

// Devices computing when `a` starts, from the trace alone: another device's action that
// started before it (or at the same time on a lower device, which the simulator dispatches
// first) and has not ended (one ending at that instant has already finished).
int busy_at_start(const Trace& t, const TraceAction& a) {
  int n = 0;
  for (const TraceAction& b : t.actions)
    if (b.device != a.device && b.end > a.start &&
        (b.start < a.start || (b.start == a.start && b.device < a.device)))
      ++n;
  return n;
}

TEST(Contention, EveryActionIsSlowedByTheDevicesBusyWhenItStarts) {
  for (const char* name : {"gpipe", "1f1b", "paci", "zb-h1", "interleaved-1f1b", "pipedream"})
    for (int P : {2, 3, 4})
      for (int M : {P * 2, P * 4}) {  // interleaved-1f1b needs a multiple of P
        const Schedule s = gen(name, P, M, 2);
        CostModel c = per_chunk(uniform(1, 2), s.spec.virtual_stages);
        c.contention = {0.25, 0.1, 0.2, 0.05, 0.5, 0};
        const SimResult r = simulate(s, c);
        for (const TraceAction& a : r.trace.actions) {
          const double want = c.duration(a.action) * (1 + c.contention[static_cast<int>(a.action.kind)] *
                                                              busy_at_start(r.trace, a));
          ASSERT_NEAR(a.end - a.start, want, 1e-9) << name << " P=" << P << " M=" << M << " " << to_string(a.action);
        }
      }
}

TEST(Contention, OffLeavesTheTraceUnchangedAndOnSlowsTheStep) {
  const Schedule s = gen("1f1b", 4, 8, 2);
  CostModel c = uniform(1, 2);
  const SimResult off = simulate(s, c);
  c.contention = {};
  const SimResult zero = simulate(s, c);
  ASSERT_EQ(off.trace.actions.size(), zero.trace.actions.size());
  for (size_t i = 0; i < off.trace.actions.size(); ++i) EXPECT_EQ(off.trace.actions[i].end, zero.trace.actions[i].end);
  c.contention[0] = c.contention[1] = 0.1;
  const SimResult on = simulate(s, c);
  EXPECT_GT(compute_metrics(on.trace).makespan, compute_metrics(off.trace).makespan);
  // Never more than the most every action could be slowed: (1 + 0.1 x (P - 1)).
  EXPECT_LE(compute_metrics(on.trace).makespan, compute_metrics(off.trace).makespan * 1.3 + 1e-9);
}

TEST(Contention, CostFilesKeepItAndRejectBadValues) {
  CostModel c = uniform(1, 2);
  c.memory_unit = "B";
  c.contention = {0.3, 0.2, 0, 0, 0, 0.1};
  const CostModel back = cost_from_json(cost_to_json(c), "c.json");
  EXPECT_EQ(back.contention, c.contention);
  EXPECT_THROW(cost_from_json(R"({"format":"paci-cost","version":1,"default":{"f":1},"contention":{"X":1}})", "c.json"),
               CostError);
  EXPECT_THROW(cost_from_json(R"({"format":"paci-cost","version":1,"default":{"f":1},"contention":{"F":-1}})", "c.json"),
               CostError);
  EXPECT_THROW(cost_from_json(R"({"format":"paci-cost","version":1,"default":{"f":1},"contention":[1]})", "c.json"),
               CostError);
}

}  // namespace
}  // namespace paci
