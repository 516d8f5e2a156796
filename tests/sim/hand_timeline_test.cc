// Small cases worked out by hand: unequal stage costs, transfer latency, link contention.
#include <gtest/gtest.h>

#include <map>

#include "tests/sim/test_util.h"

namespace paci::testing {
namespace {

struct Expected {
  std::string action;
  int device;
  double start, end;
};

void expect_timeline(const Trace& t, const std::vector<Expected>& want) {
  std::map<std::string, const TraceAction*> got;
  for (const auto& a : t.actions) got[to_string(a.action)] = &a;
  ASSERT_EQ(got.size(), want.size());
  for (const auto& w : want) {
    ASSERT_TRUE(got.count(w.action)) << w.action;
    const TraceAction& a = *got[w.action];
    EXPECT_EQ(a.device, w.device) << w.action;
    EXPECT_DOUBLE_EQ(a.start, w.start) << w.action;
    EXPECT_DOUBLE_EQ(a.end, w.end) << w.action;
  }
}

// 1f1b, P = 2, M = 2. Stage 0: F = 1, B = 2; stage 1: F = 2, B = 3; every transfer 0.5 s.
//
//   time     0    1    2    3    4    5    6    7    8    9   10   11   12   13   14
//   dev 0   [F0 ][F1 ]                         . [ B0    ]             .   [ B1    ]|
//   dev 1         .  [  F0   ][   B0       ][  F1   ][    B1      ]|
//   transfers: 0F0->1F0 1..1.5, 0F1->1F1 2..2.5, 1B0->0B0 6.5..7, 1B1->0B1 11.5..12
TEST(HandTimeline, OneFOneBUnequalStagesWithLatency) {
  CostModel c = uniform();
  c.stages.resize(2);
  c.stages[0].f = 1, c.stages[0].b = 2;
  c.stages[1].f = 2, c.stages[1].b = 3;
  c.latency = 0.5;
  SimRun r = run(gen("1f1b", 2, 2), c);
  expect_timeline(r.sim.trace, {{"0F0", 0, 0, 1},      {"0F1", 0, 1, 2},     {"0B0", 0, 7, 9},
                                {"0B1", 0, 12, 14},    {"0OPT", 0, 14, 14},  {"1F0", 1, 1.5, 3.5},
                                {"1B0", 1, 3.5, 6.5},  {"1F1", 1, 6.5, 8.5}, {"1B1", 1, 8.5, 11.5},
                                {"1OPT", 1, 11.5, 11.5}});
  ASSERT_EQ(r.sim.trace.transfers.size(), 4u);
  std::map<std::string, std::pair<double, double>> xfer;
  for (const auto& x : r.sim.trace.transfers)
    xfer[to_string(r.sim.trace.actions[x.from].action) + ">" + to_string(r.sim.trace.actions[x.to].action)] = {x.start, x.end};
  EXPECT_EQ(xfer["0F0>1F0"], std::make_pair(1.0, 1.5));
  EXPECT_EQ(xfer["0F1>1F1"], std::make_pair(2.0, 2.5));
  EXPECT_EQ(xfer["1B0>0B0"], std::make_pair(6.5, 7.0));
  EXPECT_EQ(xfer["1B1>0B1"], std::make_pair(11.5, 12.0));
  EXPECT_DOUBLE_EQ(r.m.makespan, 14);
  EXPECT_DOUBLE_EQ(r.m.devices[0].busy, 6);
  EXPECT_DOUBLE_EQ(r.m.devices[1].busy, 10);
  EXPECT_DOUBLE_EQ(r.m.devices[0].bubble, 1 - 6.0 / 14);
  EXPECT_DOUBLE_EQ(r.m.bubble, 1 - 16.0 / 28);
  EXPECT_DOUBLE_EQ(r.sim.dag_bound, 14);
  // The chain that decided the makespan.
  std::vector<std::string> path;
  for (int64_t id : r.sim.critical_path) path.push_back(to_string(r.sim.trace.actions[id].action));
  EXPECT_EQ(path, (std::vector<std::string>{"0F0", "1F0", "1B0", "1F1", "1B1", "0B1", "0OPT"}));
}

// gpipe, P = 2, M = 2, transfers of 1 byte over a 1 byte/s link: the second forward's
// transfer waits for the sender's link. Stage 0: F = 0.5, B = 1; stage 1: F = B = 1.
//
//   dev 0   [F0][F1]                                  [ B0 ][ B1 ]|       (5.5..7.5)
//   send 0       [ 0F0->1F0 ][ 0F1->1F1 ]                              0.5..1.5, 1.5..2.5
//   dev 1              [ F0 ][ F1 ][ B0 ][ B1 ]|                       1.5..5.5
//   send 1                          [1B0->0B0][1B1->0B1]               4.5..5.5, 5.5..6.5
TEST(HandTimeline, GpipeLinkContention) {
  CostModel c = uniform();
  c.stages.resize(2);
  c.stages[0].f = 0.5, c.stages[0].b = 1;
  c.stages[1].f = 1, c.stages[1].b = 1;
  for (auto& s : c.stages) s.send_bytes = s.grad_send_bytes = 1;
  c.bandwidth = 1;
  SimRun r = run(gen("gpipe", 2, 2), c);
  expect_timeline(r.sim.trace, {{"0F0", 0, 0, 0.5},   {"0F1", 0, 0.5, 1},   {"0B0", 0, 5.5, 6.5},
                                {"0B1", 0, 6.5, 7.5}, {"0OPT", 0, 7.5, 7.5}, {"1F0", 1, 1.5, 2.5},
                                {"1F1", 1, 2.5, 3.5}, {"1B0", 1, 3.5, 4.5}, {"1B1", 1, 4.5, 5.5},
                                {"1OPT", 1, 5.5, 5.5}});
  std::map<std::string, std::pair<double, double>> xfer;
  for (const auto& x : r.sim.trace.transfers) {
    xfer[to_string(r.sim.trace.actions[x.from].action) + ">" + to_string(r.sim.trace.actions[x.to].action)] = {x.start, x.end};
    EXPECT_EQ(x.bytes, 1);
  }
  EXPECT_EQ(xfer["0F1>1F1"], std::make_pair(1.5, 2.5));  // queued behind 0F0's transfer
  EXPECT_EQ(xfer["1B1>0B1"], std::make_pair(5.5, 6.5));
  EXPECT_DOUBLE_EQ(r.m.makespan, 7.5);
  // Activation memory: stage 1 holds both micro-batches from 1.5 (F0 starts) until B0 ends.
  auto tl = memory_timeline(r.sim.trace, 1);
  EXPECT_DOUBLE_EQ(r.m.devices[1].peak_dynamic, 2);
  EXPECT_DOUBLE_EQ(r.m.devices[1].peak_time, 2.5);
}

// A split backward frees part of the activations at I and the rest at W; OPT takes time.
TEST(HandTimeline, SplitBackwardMemoryAndOptimizerTime) {
  CostModel c = uniform(1, 2, 1);
  c.stages[0].activation_bytes = 10;
  c.stages[0].freed_by_i = 0.6;
  c.stages[0].weight_bytes = 100;
  c.stages[0].opt = 0.25;
  c.memory_unit = "B";
  // One stage, one micro-batch: F [0,1], I [1,2], W [2,3], OPT [3,3.25].
  Schedule s = gen("zb-h1", 1, 1);
  SimRun r = run(s, c);
  expect_timeline(r.sim.trace, {{"0F0", 0, 0, 1}, {"0I0", 0, 1, 2}, {"0W0", 0, 2, 3}, {"0OPT", 0, 3, 3.25}});
  auto tl = memory_timeline(r.sim.trace, 0);
  std::vector<std::pair<double, double>> want = {{0, 100}, {0, 110}, {2, 104}, {3, 100}};
  ASSERT_EQ(tl.size(), want.size());
  for (size_t k = 0; k < tl.size(); ++k) {
    EXPECT_DOUBLE_EQ(tl[k].first, want[k].first) << k;
    EXPECT_NEAR(tl[k].second, want[k].second, 1e-12) << k;
  }
  EXPECT_DOUBLE_EQ(r.m.peak_memory, 110);
}

}  // namespace
}  // namespace paci::testing
