// paci-v: PACI's rule (arXiv 2606.07881: no flush, a stage-local OPT after every a-th
// backward, an in-flight cap per stage) on the V placement of zb-v: D devices, S = 2D
// stages, device d holding stages d and u = 2D-1-d.
//
// Order: a periodic steady state. In units where a stage's F takes 1 and its B 2 (PACI's
// B = 2F), device d runs F(d), F(u), B(u), B(d) of one micro-batch every 6 units with no
// gap, each at a fixed phase of the period. Given the phases, micro-batch 0's pass runs
// F(0), F(1), ..., F(2D-1), B(2D-1), ..., B(0), each at the earliest time at or after its
// predecessor's end that has its phase; micro-batch m runs 6m later. Every device's
// program is its actions in the order of those times (an OPT right after the a-th
// backward), so dependencies and program order agree (no deadlock) and, with those costs,
// no device idles between the fill and the drain (tests/sim/closed_forms_test.cc).
//
// Phases: a device has 36 tilings of its period (the cyclic order of its other three
// actions after F(d), times the period's rotation). A first fit places the pass's actions
// in order, each at the earliest time whose phase leaves the device a tiling; then each
// device in turn takes the tiling (others fixed) that lowers (the largest device peak, the
// sum of device peaks, the sum of the stages' L_s below), until none does. For D = 2..6 this reaches the
// optimum over all periodic gap-free orders with integer phases (an exhaustive search; see
// tests/schedules/new_schedules_test.cc): 4, 5, 6, 8, 9 stage activations on the fullest
// device, against PACI's 2D (D full stages = 2D half stages). At D = 2 no such order does
// better than 4 = PACI's; from D = 3 on, paci-v's largest device holds less than PACI's
// first device (about 3/4 of it for large D), and the load is even across devices.
//
// In-flight cap: stage s keeps a micro-batch from its F to the end of its B, L_s units, so
// cap_s = ceil(L_s / 6) are in flight at once (at most the run's M x N).
//
// Drift bound. Backwards of a stage run in micro-batch order and an OPT follows every a-th,
// so B(s, m) uses version floor(m/a). When F(s, m) runs, c_s - 1 older micro-batches are in
// flight on s (c_s its cap), so F(s, m) uses version floor((m - c_s + 1)/a):
//   drift(s, m) <= ceil((c_s - 1)/a),
// reached in steady state (declared and checked by validation with the delay, equal to the
// drift under the `current` policy, and the in-flight caps).
#include <algorithm>
#include <array>
#include <tuple>
#include <utility>

#include "schedules/gen/generators.h"

namespace paci {

namespace {

constexpr int kPeriod = 6;  // F(d) + F(u) + B(u) + B(d) = 1 + 1 + 2 + 2

int floor_div(int x, int y) { return x >= 0 ? x / y : -((-x + y - 1) / y); }
int mod(int x) { return ((x % kPeriod) + kPeriod) % kPeriod; }

// A device's four actions, in this order: F(d), F(u), B(u), B(d).
constexpr int kLen[4] = {1, 1, 2, 2};
using Tiling = std::array<int, 4>;  // the phase of each

// Every gap-free arrangement of the four actions in one period.
const std::vector<Tiling>& tilings() {
  static const std::vector<Tiling> all = [] {
    std::vector<Tiling> out;
    std::array<int, 3> rest = {1, 2, 3};
    do {
      for (int rot = 0; rot < kPeriod; ++rot) {
        Tiling t{};
        int at = rot;
        t[0] = mod(at);
        at += kLen[0];
        for (int k : rest) {
          t[k] = mod(at);
          at += kLen[k];
        }
        out.push_back(t);
      }
    } while (std::next_permutation(rest.begin(), rest.end()));
    return out;
  }();
  return all;
}

// The pass of micro-batch 0, as (device, which of its four actions) in dependency order.
std::vector<std::pair<int, int>> pass(int D) {
  std::vector<std::pair<int, int>> out;
  for (int d = 0; d < D; ++d) out.push_back({d, 0});            // F(0..D-1)
  for (int d = D - 1; d >= 0; --d) out.push_back({d, 1});       // F(D..2D-1)
  for (int d = 0; d < D; ++d) out.push_back({d, 2});            // B(2D-1..D)
  for (int d = D - 1; d >= 0; --d) out.push_back({d, 3});       // B(D-1..0)
  return out;
}

struct Evaluated {
  PaciVPattern pattern;
  std::tuple<int, int, int> score;  // largest device peak, sum of peaks, sum of the L_s
};

// Times of the pass under the given tilings, the caps and the device peaks.
Evaluated evaluate(int D, const std::vector<Tiling>& tiling) {
  const int S = 2 * D;
  PaciVPattern p;
  p.f.assign(S, 0);
  p.b.assign(S, 0);
  int ready = 0;
  for (auto [d, k] : pass(D)) {
    const int t = ready + mod(tiling[d][k] - ready);
    const int stage = k == 0 || k == 3 ? d : S - 1 - d;
    (k < 2 ? p.f : p.b)[stage] = t;
    ready = t + kLen[k];
  }
  p.cap.resize(S);
  int held = 0;  // sum of the stages' L_s: activations x time
  for (int s = 0; s < S; ++s) {
    const int L = p.b[s] + 2 - p.f[s];
    p.cap[s] = (L + kPeriod - 1) / kPeriod;
    held += L;
  }
  p.device_peak.assign(D, 0);
  int sum = 0;
  for (int d = 0; d < D; ++d) {
    for (int x = 0; x < kPeriod; ++x) {  // in flight at time x of the steady state
      int n = 0;
      for (int s : {d, S - 1 - d}) {
        const int start = p.f[s], end = p.b[s] + 2;  // held over [start + 6k, end + 6k)
        n += floor_div(x - start, kPeriod) - floor_div(x - end, kPeriod);
      }
      p.device_peak[d] = std::max(p.device_peak[d], n);
    }
    sum += p.device_peak[d];
  }
  const int peak = *std::max_element(p.device_peak.begin(), p.device_peak.end());
  return {p, {peak, sum, held}};
}

// First fit: the pass's actions in order, each at the earliest time whose phase some tiling
// of its device still allows together with the phases chosen before.
std::vector<Tiling> first_fit(int D) {
  std::vector<std::vector<Tiling>> open(D, tilings());
  int ready = 0;
  for (auto [d, k] : pass(D)) {
    for (int t = ready;; ++t) {
      std::vector<Tiling> keep;
      for (const Tiling& x : open[d])
        if (x[k] == mod(t)) keep.push_back(x);
      if (keep.empty()) continue;
      open[d] = std::move(keep);
      ready = t + kLen[k];
      break;
    }
  }
  std::vector<Tiling> out;
  for (const auto& o : open) out.push_back(o.front());  // one left: every phase is fixed
  return out;
}

}  // namespace

PaciVPattern paci_v_pattern(int D) {
  std::vector<Tiling> tiling = first_fit(D);
  Evaluated best = evaluate(D, tiling);
  for (bool improved = true; improved;) {
    improved = false;
    for (int d = 0; d < D; ++d)
      for (const Tiling& x : tilings()) {
        const Tiling old = tiling[d];
        tiling[d] = x;
        Evaluated e = evaluate(D, tiling);
        if (e.score < best.score) {
          best = std::move(e);
          improved = true;
        } else {
          tiling[d] = old;
        }
      }
  }
  return best.pattern;
}

int paci_v_cap(int D, int s) { return paci_v_pattern(D).cap.at(s); }

Schedule gen_paci_v(int D, int M, int N, int a) {
  const int S = 2 * D, T = M * N;
  const PaciVPattern p = paci_v_pattern(D);
  Schedule sch;
  sch.name = "paci-v";
  sch.spec = {D, 2, M, N};
  sch.accum = a;
  sch.policy = WeightPolicy::kCurrent;
  sch.stage_device = v_placement(D);
  sch.programs.resize(D);
  // Each device's actions keyed by their time in the periodic run; an OPT one unit into the
  // B it follows (a B lasts 2, so no other action starts there).
  std::vector<std::vector<std::pair<long long, Action>>> timed(D);
  for (int s = 0; s < S; ++s) {
    auto& out = timed[sch.stage_device[s]];
    for (int m = 0; m < T; ++m) {
      const long long shift = static_cast<long long>(kPeriod) * m;
      out.emplace_back(p.f[s] + shift, Fwd(s, m));
      out.emplace_back(p.b[s] + shift, Bwd(s, m));
      if ((m + 1) % a == 0) out.emplace_back(p.b[s] + shift + 1, Opt(s));
    }
  }
  for (int d = 0; d < D; ++d) {
    std::sort(timed[d].begin(), timed[d].end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    sch.programs[d].reserve(timed[d].size());
    for (const auto& [key, action] : timed[d]) sch.programs[d].push_back(action);
  }
  for (int s = 0; s < S; ++s) {
    const int cap = std::min(T, p.cap[s]);
    const int bound = (cap - 1 + a - 1) / a;
    sch.bounds.max_drift.push_back(bound);
    sch.bounds.max_delay.push_back(bound);
    sch.bounds.max_inflight.push_back(cap);
  }
  sch.bounds.max_weight_copies.assign(S, 1);
  return sch;
}

}  // namespace paci
