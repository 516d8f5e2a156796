// paci-v: PACI's rule (arXiv 2606.07881: no flush, a stage-local OPT after every a-th
// backward, a waiting backward first, an in-flight cap per stage) on the V placement of
// zb-v: D devices, S = 2D stages, device d holding stages d and 2D-1-d.
//
// Order. Each stage runs PACI's 1F1B order over all N*M micro-batches with a warm-up of
// c_s - 1 forwards (c_s: its in-flight cap), an OPT after every a-th backward. A device
// interleaves its two stages' lists in the order of their start times in the unit-time run
// of those lists on S separate devices (F = 1, B = 2; ties: the lower stage), an order
// consistent with every dependency, so the programs run without deadlock.
//
// In-flight cap: c_s = 2D - 1 - s on the way down (s < D), 2D - s on the way up (s >= D):
// 1F1B's S - s over the S stages, one less on the way down. Device d then holds
// c_d + c_(2D-1-d) = 2D stage activations, D device shares (each stage is half of one):
// PACI's and 1F1B's first-device peak, on every device, where PACI's device s holds D - s.
// With uniform costs the steady state has no bubble (tests/sim/closed_forms_test.cc).
//
// Drift bound. Backwards of a stage run in micro-batch order and an OPT follows every a-th,
// so B(s, m) uses version floor(m/a). When F(s, m) runs, at most c_s - 1 older micro-batches
// are in flight on s, so F(s, m) uses version floor((m - k)/a) with k <= c_s - 1:
//   drift(s, m) <= ceil((c_s - 1)/a),
// reached in steady state, where k = c_s - 1 (declared and checked by validation with the
// delay, equal to the drift under the `current` policy, and the in-flight caps).
#include <algorithm>
#include <utility>

#include "schedules/gen/generators.h"
#include "schedules/graph.h"

namespace paci {

int paci_v_cap(int D, int s) { return s < D ? 2 * D - 1 - s : 2 * D - s; }

Schedule gen_paci_v(int D, int M, int N, int a) {
  const int S = 2 * D, T = M * N;
  // The per-stage lists, one stage per device, to be interleaved.
  Schedule lin = linear_skeleton("paci-v", S, M, N, a, WeightPolicy::kCurrent);
  std::vector<int> cap(S);
  for (int s = 0; s < S; ++s) {
    cap[s] = std::min(T, paci_v_cap(D, s));
    append_1f1b(lin.programs[s], s, s + cap[s], 0, T, a);
  }
  ActionIndex index(lin);
  InOrderTimes t = run_in_order(lin, index, [](const Action& x) {
    return x.kind == ActionKind::F ? 1.0 : x.kind == ActionKind::B ? 2.0 : 0.0;
  });
  Schedule sch;
  sch.name = "paci-v";
  sch.spec = {D, 2, M, N};
  sch.accum = a;
  sch.policy = WeightPolicy::kCurrent;
  sch.stage_device = v_placement(D);
  sch.programs.resize(D);
  std::vector<std::vector<std::pair<double, Action>>> timed(D);
  for (int s = 0; s < S; ++s)
    for (int p = 0; p < static_cast<int>(lin.programs[s].size()); ++p)
      timed[sch.stage_device[s]].emplace_back(t.start[index.id({s, p})], lin.programs[s][p]);
  for (int d = 0; d < D; ++d) {
    // Stable: equal starts keep the lower stage first and each stage's own order.
    std::stable_sort(timed[d].begin(), timed[d].end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    for (const auto& [start, action] : timed[d]) sch.programs[d].push_back(action);
  }
  for (int s = 0; s < S; ++s) {
    const int bound = (cap[s] - 1 + a - 1) / a;
    sch.bounds.max_drift.push_back(bound);
    sch.bounds.max_delay.push_back(bound);
    sch.bounds.max_inflight.push_back(cap[s]);
  }
  sch.bounds.max_weight_copies.assign(S, 1);
  return sch;
}

}  // namespace paci
