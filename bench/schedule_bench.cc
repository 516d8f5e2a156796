// Build and validate large schedules: paci and zb-h1 at P = 64, M = 1024, N = 4 (target: under
// 0.5 s each on one core), plus a scaling series in M.
#include <benchmark/benchmark.h>

#include "schedules/registry.h"
#include "schedules/validate.h"

namespace paci {
namespace {

void BuildAndValidate(benchmark::State& state, const char* name) {
  const int P = static_cast<int>(state.range(0));
  const int M = static_cast<int>(state.range(1));
  const int N = static_cast<int>(state.range(2));
  size_t actions = 0;
  for (auto _ : state) {
    Schedule s = make_schedule(name, {P, M, N});
    Analysis a = validate(s);
    benchmark::DoNotOptimize(a.stages.data());
    actions = s.num_actions();
  }
  state.counters["actions"] = static_cast<double>(actions);
  state.counters["actions/s"] = benchmark::Counter(static_cast<double>(actions) * state.iterations(),
                                                   benchmark::Counter::kIsRate);
}

void Args(benchmark::internal::Benchmark* b) {
  b->Args({64, 1024, 4})->Args({64, 256, 4})->Args({64, 64, 4})->Args({16, 1024, 4});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK_CAPTURE(BuildAndValidate, paci, "paci")->Apply(Args);
BENCHMARK_CAPTURE(BuildAndValidate, zb_h1, "zb-h1")->Apply(Args);
BENCHMARK_CAPTURE(BuildAndValidate, one_f_one_b, "1f1b")->Apply(Args);

}  // namespace
}  // namespace paci

BENCHMARK_MAIN();
