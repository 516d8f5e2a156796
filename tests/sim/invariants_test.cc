// Invariants on random cost models: whatever the durations, the simulation must respect its
// resources and dependencies, account busy time exactly, never beat the DAG's longest path,
// and measure the same drift and delay as the static analysis.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "schedules/graph.h"
#include "sim/zero_bubble.h"
#include "tests/sim/test_util.h"

namespace paci::testing {
namespace {

constexpr double kEps = 1e-9;

CostModel random_cost(std::mt19937_64& rng, int S, bool comm) {
  std::uniform_real_distribution<double> dur(0.1, 3.0), frac(0, 1);
  CostModel c;
  c.memory_unit = "B";
  for (int s = 0; s < S; ++s) {
    StageCost x;
    x.f = dur(rng);
    x.i = dur(rng);
    x.w = dur(rng);
    x.b = x.i + x.w;
    x.opt = frac(rng) < 0.5 ? 0 : dur(rng) / 4;
    x.activation_bytes = 1 + 9 * frac(rng);
    x.freed_by_i = frac(rng);
    x.weight_bytes = 100 * frac(rng);
    x.send_bytes = comm ? 10 * frac(rng) : 0;
    x.grad_send_bytes = comm ? 10 * frac(rng) : 0;
    c.stages.push_back(x);
  }
  if (comm) {
    c.latency = frac(rng) / 2;
    c.bandwidth = 5 + 20 * frac(rng);
  }
  c.description = "random";
  return c;
}

void check_invariants(const Schedule& s, const CostModel& c, const SimOptions& o) {
  SCOPED_TRACE(s.name);
  SimRun r = run(s, c, o);
  const Trace& t = r.sim.trace;
  ActionIndex index(s);
  Analysis an = analyze(s, index);
  // Compute: no overlap per device, busy = sum of the durations the cost model gives.
  std::vector<std::vector<const TraceAction*>> dev(s.devices());
  std::vector<double> want_busy(s.devices(), 0);
  std::vector<int> opt_index(s.stages(), 0);
  for (int d = 0; d < s.devices(); ++d)
    for (const Action& a : s.programs[d]) {
      int idx = a.kind == ActionKind::OPT ? opt_index[a.stage]++ : a.mb;
      want_busy[d] += action_duration(c, o, a, idx);
    }
  for (const auto& a : t.actions) dev[a.device].push_back(&a);
  for (int d = 0; d < s.devices(); ++d) {
    auto& v = dev[d];
    std::sort(v.begin(), v.end(), [](auto* x, auto* y) { return x->pos < y->pos; });
    for (size_t k = 1; k < v.size(); ++k) EXPECT_GE(v[k]->start, v[k - 1]->end - kEps) << "device " << d;
    EXPECT_NEAR(r.m.devices[d].busy, want_busy[d], 1e-6 * std::max(1.0, want_busy[d]));
  }
  // Links: no overlap on a sender's send link or a receiver's receive link.
  for (int side = 0; side < 2; ++side)
    for (int d = 0; d < s.devices(); ++d) {
      std::vector<std::pair<double, double>> v;
      for (const auto& x : t.transfers)
        if ((side == 0 ? x.src : x.dst) == d) v.emplace_back(x.start, x.end);
      std::sort(v.begin(), v.end());
      for (size_t k = 1; k < v.size(); ++k) EXPECT_GE(v[k].first, v[k - 1].second - kEps);
    }
  // Data dependencies: a consumer starts after its producer ends (plus transfer).
  std::vector<int64_t> deps;
  for (size_t id = 0; id < index.size(); ++id) {
    index.data_deps(static_cast<int64_t>(id), deps);
    for (int64_t x : deps) EXPECT_GE(t.actions[id].start, t.actions[x].end - kEps);
  }
  for (const auto& x : t.transfers) {
    EXPECT_NEAR(x.end - x.start, c.transfer_time(x.bytes), 1e-9);
    EXPECT_NE(x.src, x.dst);
  }
  // Makespan >= longest path through the DAG; equal when transfers never wait for a link.
  EXPECT_GE(r.m.makespan, r.sim.dag_bound - kEps);
  if (c.latency == 0 && c.bandwidth == 0) {
    EXPECT_NEAR(r.m.makespan, r.sim.dag_bound, kEps);
  }
  // The critical path ends at the makespan and is a chain in time.
  ASSERT_FALSE(r.sim.critical_path.empty());
  EXPECT_NEAR(t.actions[r.sim.critical_path.back()].end, r.m.end, kEps);
  for (size_t k = 1; k < r.sim.critical_path.size(); ++k)
    EXPECT_GE(t.actions[r.sim.critical_path[k]].start, t.actions[r.sim.critical_path[k - 1]].end - kEps);
  // Simulated versions = static analysis, per (stage, micro-batch) and per stage.
  RecordedVersions rv = recorded_versions(t);
  for (int st = 0; st < s.stages(); ++st) {
    for (int m = 0; m < s.spec.total_microbatches(); ++m) {
      EXPECT_EQ(rv.v_fwd[st][m], an.mb[st][m].v_fwd);
      EXPECT_EQ(rv.drift[st][m], an.mb[st][m].drift);
      EXPECT_EQ(rv.delay[st][m], an.mb[st][m].delay);
    }
    EXPECT_EQ(r.m.stages[st].max_drift, an.stages[st].max_drift);
    EXPECT_NEAR(r.m.stages[st].mean_drift, an.stages[st].mean_drift, 1e-12);
    EXPECT_EQ(r.m.stages[st].max_delay, an.stages[st].max_delay);
    EXPECT_EQ(r.m.stages[st].updates, an.stages[st].updates);
  }
  // All activations are given back.
  for (int d = 0; d < s.devices(); ++d) {
    auto tl = memory_timeline(t, d);
    EXPECT_NEAR(tl.back().second, t.static_memory[d].total(), 1e-6);
  }
}

TEST(Invariants, RandomCostModels) {
  std::mt19937_64 rng(12345);
  for (int trial = 0; trial < 30; ++trial) {
    const int P = 2 + static_cast<int>(rng() % 5);
    const int M = P * (1 + static_cast<int>(rng() % 3));
    const int N = 1 + static_cast<int>(rng() % 3);
    const bool comm = trial % 3 != 0;
    SimOptions o;
    o.jitter = trial % 2 ? 0.3 : 0;
    o.seed = trial;
    if (trial % 5 == 0) o.stragglers = {{static_cast<int>(rng() % P), 2.0}};
    SCOPED_TRACE(::testing::Message() << "trial " << trial << " P=" << P << " M=" << M << " N=" << N);
    CostModel c = random_cost(rng, P, comm);
    // paci with a = 1 (drift up to P-1), 2 (when it divides the run) or M.
    const int a = trial % 3 == 0 ? 1 : (trial % 3 == 1 && M * N % 2 == 0) ? 2 : M;
    for (const char* name : {"gpipe", "1f1b", "paci", "zb-h1", "pipedream", "pipedream-2bw"})
      check_invariants(gen(name, P, M, N, 0, std::string(name) == "paci" ? a : 0), c, o);
    check_invariants(make_zero_bubble("zb-1p", P, M, N, c), c, o);
    check_invariants(make_zero_bubble("zb-2p", P, M, N, c), c, o);
    CostModel cv = random_cost(rng, 2 * P, comm);
    check_invariants(gen("interleaved-1f1b", P, M, N, 2), cv, o);
  }
}

}  // namespace
}  // namespace paci::testing
