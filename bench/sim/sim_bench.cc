// Simulator throughput: a full simulation (memory counters, weight versions, transfers,
// critical path) of large schedules, and the metrics over its trace. Target: >= 5 million
// actions per second on one core at P = 64, M = 1024, N = 8, cost linear in the actions.
//   bazel run //bench/sim:sim_bench            (-c opt is the default in .bazelrc)
#include <benchmark/benchmark.h>

#include "schedules/registry.h"
#include "schedules/trace/metrics.h"
#include "sim/cost.h"
#include "sim/simulator.h"

namespace paci {
namespace {

Schedule make(const char* name, int P, int M, int N) {
  ScheduleParams p;
  p.stages = P;
  p.microbatches = M;
  p.steps = N;
  return make_schedule(name, p);
}

CostModel cost() {
  CostModel c = parse_uniform_cost("f=1,b=2,opt=0.1,comm=0.05,act=1e6,weights=1e8");
  return c;
}

// Args: P, M, N; schedule by template argument index.
template <int Kind>
void BM_Simulate(benchmark::State& st) {
  static const char* names[] = {"paci", "1f1b", "zb-h1"};
  Schedule s = make(names[Kind], static_cast<int>(st.range(0)), static_cast<int>(st.range(1)),
                    static_cast<int>(st.range(2)));
  CostModel c = cost();
  for (auto _ : st) {
    SimResult r = simulate(s, c);
    benchmark::DoNotOptimize(r.trace.actions.data());
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(s.num_actions()));
  st.counters["actions"] = static_cast<double>(s.num_actions());
}

// What `paci sim`'s summary asks for: metrics and the critical path, the trace not kept, as
// `paci sim --schedule paci -P 64 -M 1024 -N 8 --cost f=1,b=2` runs it.
void BM_SimulateSummary(benchmark::State& st) {
  Schedule s = make("paci", static_cast<int>(st.range(0)), static_cast<int>(st.range(1)),
                    static_cast<int>(st.range(2)));
  // bench/sim/e2e-run's costs: every device in step, no transfer time.
  CostModel c = parse_uniform_cost("f=1,b=2");
  SimOptions o;
  o.keep_trace = false;
  for (auto _ : st) {
    SimResult r = simulate(s, c, o);
    benchmark::DoNotOptimize(r.metrics.makespan);
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(s.num_actions()));
  st.counters["actions"] = static_cast<double>(s.num_actions());
}

void BM_SimulateAndMetrics(benchmark::State& st) {
  Schedule s = make("paci", static_cast<int>(st.range(0)), static_cast<int>(st.range(1)),
                    static_cast<int>(st.range(2)));
  CostModel c = cost();
  for (auto _ : st) {
    SimResult r = simulate(s, c);
    TraceMetrics m = compute_metrics(r.trace);
    benchmark::DoNotOptimize(m.makespan);
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(s.num_actions()));
  st.counters["actions"] = static_cast<double>(s.num_actions());
}

// The size, then a scaling series in M (P = 64, N = 8) and in P (M = 1024, N = 8).
void Args(benchmark::internal::Benchmark* b) {
  for (int M : {64, 128, 256, 512, 1024}) b->Args({64, M, 8});
  for (int P : {8, 16, 32}) b->Args({P, 1024, 8});
  b->Unit(benchmark::kMillisecond);
}

BENCHMARK_TEMPLATE(BM_Simulate, 0)->Name("BM_Simulate/paci")->Apply(Args);
BENCHMARK_TEMPLATE(BM_Simulate, 1)->Name("BM_Simulate/1f1b")->Args({64, 1024, 8})->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(BM_Simulate, 2)->Name("BM_Simulate/zb-h1")->Args({64, 1024, 8})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SimulateAndMetrics)->Args({64, 1024, 8})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SimulateSummary)->Args({64, 1024, 8})->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace paci

BENCHMARK_MAIN();
