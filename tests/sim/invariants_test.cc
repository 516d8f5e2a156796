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

// Bit for bit: the metrics the simulator computes as it runs are compute_metrics() of its trace.
void expect_same_metrics(const TraceMetrics& a, const TraceMetrics& b) {
  EXPECT_EQ(a.start, b.start);
  EXPECT_EQ(a.end, b.end);
  EXPECT_EQ(a.makespan, b.makespan);
  EXPECT_EQ(a.busy, b.busy);
  EXPECT_EQ(a.bubble, b.bubble);
  EXPECT_EQ(a.steady, b.steady);
  EXPECT_EQ(a.steady_bubble, b.steady_bubble);
  EXPECT_EQ(a.step_time, b.step_time);
  EXPECT_EQ(a.samples_per_second, b.samples_per_second);
  EXPECT_EQ(a.tokens_per_second, b.tokens_per_second);
  EXPECT_EQ(a.peak_memory, b.peak_memory);
  EXPECT_EQ(a.peak_device, b.peak_device);
  ASSERT_EQ(a.devices.size(), b.devices.size());
  for (size_t d = 0; d < a.devices.size(); ++d) {
    const DeviceMetrics &x = a.devices[d], &y = b.devices[d];
    EXPECT_EQ(x.busy, y.busy);
    EXPECT_EQ(x.first_start, y.first_start);
    EXPECT_EQ(x.last_end, y.last_end);
    EXPECT_EQ(x.bubble, y.bubble);
    EXPECT_EQ(x.steady, y.steady);
    EXPECT_EQ(x.steady_begin, y.steady_begin);
    EXPECT_EQ(x.steady_end, y.steady_end);
    EXPECT_EQ(x.steady_bubble, y.steady_bubble);
    EXPECT_EQ(x.step_time, y.step_time);
    EXPECT_EQ(x.peak_memory, y.peak_memory);
    EXPECT_EQ(x.peak_time, y.peak_time);
    EXPECT_EQ(x.static_memory.total(), y.static_memory.total());
    EXPECT_EQ(x.peak_dynamic, y.peak_dynamic);
    EXPECT_EQ(x.actions, y.actions);
  }
  ASSERT_EQ(a.stages.size(), b.stages.size());
  for (size_t s = 0; s < a.stages.size(); ++s) {
    const StageDriftStats &x = a.stages[s], &y = b.stages[s];
    EXPECT_EQ(x.updates, y.updates);
    EXPECT_EQ(x.max_drift, y.max_drift);
    EXPECT_EQ(x.mean_drift, y.mean_drift);
    EXPECT_EQ(x.max_delay, y.max_delay);
    EXPECT_EQ(x.mean_delay, y.mean_delay);
    EXPECT_EQ(x.microbatches, y.microbatches);
  }
}

// The result without the trace (SimOptions::keep_trace false) has the same metrics and
// critical path as the one with it.
void check_without_trace(const Schedule& s, const CostModel& c, SimOptions o, const SimResult& full) {
  expect_same_metrics(full.metrics, compute_metrics(full.trace));
  o.keep_trace = false;
  const SimResult lean = simulate(s, c, o);
  EXPECT_TRUE(lean.trace.actions.empty() && lean.trace.transfers.empty() && lean.trace.memory.empty());
  expect_same_metrics(lean.metrics, full.metrics);
  EXPECT_EQ(lean.critical_path, full.critical_path);
  ASSERT_EQ(lean.critical_actions.size(), full.critical_path.size());
  for (size_t k = 0; k < full.critical_path.size(); ++k) {
    const TraceAction& a = full.trace.actions[full.critical_path[k]];
    EXPECT_EQ(lean.critical_actions[k].action, a.action);
    EXPECT_EQ(lean.critical_actions[k].device, a.device);
    EXPECT_EQ(lean.critical_actions[k].start, a.start);
    EXPECT_EQ(lean.critical_actions[k].end, a.end);
  }
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
  check_without_trace(s, c, o, r.sim);
}

// The same for the schedules with V placements, overlapped F&B and split backwards, and for
// the PACI runtime's dynamic policy.
TEST(Invariants, MetricsWhileSimulating) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 6; ++trial) {
    SimOptions o;
    o.jitter = trial % 2 ? 0.2 : 0;
    o.seed = trial;
    const bool comm = trial % 3 != 0;
    SCOPED_TRACE(::testing::Message() << "trial " << trial);
    CostModel cv = random_cost(rng, 8, comm);
    for (const char* name : {"zb-v", "v-half", "v-min", "dualpipev", "paci-v"}) {
      SCOPED_TRACE(name);
      const Schedule s = gen(name, 4, 8, 2);
      check_without_trace(s, cv, o, simulate(s, cv, o));
    }
    CostModel c = random_cost(rng, 4, comm);
    const SimResult dyn = simulate_paci_policy(4, 8, 2, 2, c, o);
    expect_same_metrics(dyn.metrics, compute_metrics(dyn.trace));
    SimOptions lean = o;
    lean.keep_trace = false;
    const SimResult dyn_lean = simulate_paci_policy(4, 8, 2, 2, c, lean);
    expect_same_metrics(dyn_lean.metrics, dyn.metrics);
    EXPECT_EQ(dyn_lean.critical_path, dyn.critical_path);
    EXPECT_EQ(dyn_lean.realised, dyn.realised);
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
