// paci-v: PACI's rule (arXiv 2606.07881: no flush, a stage-local OPT after every a-th
// backward, an in-flight cap per stage) on the V placement of zb-v: D devices, S = 2D
// stages, device d holding stages d and u = 2D-1-d.
//
// Order: a periodic steady state. Every period, device d runs F(d), F(u), B(u), B(d) of one
// micro-batch each, each at a fixed phase of the period; the period is the largest device's
// load, so that device never idles. Given the phases, micro-batch 0's pass runs F(0), F(1),
// ..., F(2D-1), B(2D-1), ..., B(0), each at the earliest time at or after its predecessor's
// end that has its phase; micro-batch m runs m periods later. Every device's program is its
// actions in the order of those times (an OPT right after the a-th backward), so
// dependencies and program order agree (no deadlock) and, with those costs, the fullest
// device does not idle between the fill and the drain (tests/sim/closed_forms_test.cc).
// The library's paci-v assumes equal stages with B = 2F (F = 1, B = 2: a period of 6);
// where a command has a cost model (sim, train, compare, plan) paci-v is built for the
// stages' own F and B and activations instead (make_paci_v, sim/builders.cc), in whole units
// of about 1/48 of the period.
//
// Phases: an arrangement of a device's period is the cyclic order of its other three actions
// after F(d), a rotation, and where its idle time (period minus its load) goes: after which
// of the four (36 arrangements when the device is full). A first fit places the pass's
// actions in order, each at the earliest time whose phase leaves the device an arrangement;
// then each device in turn takes the arrangement (others fixed) that lowers (the largest
// device's peak activation memory, the sum of device peaks, the sum over stages of
// activations x L_s below), until none does. With equal stages this reaches, for D = 2..6,
// the optimum over all periodic gap-free orders with integer phases (an exhaustive search;
// tests/schedules/new_schedules_test.cc checks D = 2..4): 4, 5, 6, 8, 9 stage activations on
// the fullest device, against PACI's 2D (D full stages = 2D half stages). At D = 2 no such
// order does better than 4 = PACI's; from D = 3 on, paci-v's fullest device holds less than
// PACI's first device (about 3/4 of it for large D), and the load is even across devices.
//
// In-flight cap: stage s keeps a micro-batch from its F to the end of its B, L_s, so
// cap_s = ceil(L_s / period) are in flight at once (at most the run's M x N). Stage 0 waits
// for the whole V (2D stages) before its backward, so its cap, about 1.4 D, is more than
// PACI's D, and so is its drift bound.
//
// Drift bound. Backwards of a stage run in micro-batch order and an OPT follows every a-th,
// so B(s, m) uses version floor(m/a). When F(s, m) runs, c_s - 1 older micro-batches are in
// flight on s (c_s its cap), so F(s, m) uses version floor((m - c_s + 1)/a):
//   drift(s, m) <= ceil((c_s - 1)/a),
// reached in steady state (declared and checked by validation with the delay, equal to the
// drift under the `current` policy, and the in-flight caps).
#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "schedules/gen/generators.h"

namespace paci {

namespace {

int floor_div(long x, long y) { return static_cast<int>(x >= 0 ? x / y : -((-x + y - 1) / y)); }

// A device's four actions, in this order: F(d), F(u), B(u), B(d).
using Tiling = std::array<int, 4>;  // the phase of each in the period

// The periodic problem: stage s's F and B take f[s] and b[s] units, a device's four actions
// fit in a period of `period` units, stage s keeps act[s] of memory per micro-batch.
struct Problem {
  int D = 0, period = 0;
  std::vector<int> f, b;
  std::vector<double> act;
  int stage(int d, int k) const { return k == 0 || k == 3 ? d : 2 * D - 1 - d; }
  int len(int d, int k) const { return k < 2 ? f[stage(d, k)] : b[stage(d, k)]; }
  int mod(long x) const { return static_cast<int>(((x % period) + period) % period); }
};

// Every arrangement of a device's four actions in one period: F(d) first, the other three in
// any order, any rotation, the device's idle time (period - its load) in one gap after any
// of the four.
std::vector<Tiling> tilings(const Problem& p, int d) {
  int load = 0;
  for (int k = 0; k < 4; ++k) load += p.len(d, k);
  const int idle = p.period - load;
  std::vector<Tiling> out;
  std::array<int, 4> order = {0, 1, 2, 3};
  do {
    for (int gap = 0; gap < (idle > 0 ? 4 : 1); ++gap)
      for (int rot = 0; rot < p.period; ++rot) {
        Tiling t{};
        long at = rot;
        for (int j = 0; j < 4; ++j) {
          t[order[j]] = p.mod(at);
          at += p.len(d, order[j]) + (j == gap ? idle : 0);
        }
        out.push_back(t);
      }
  } while (std::next_permutation(order.begin() + 1, order.end()));
  return out;
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
  std::tuple<double, double, double> score;  // largest device peak, sum of peaks, sum of act x L
};

// Times of the pass under the given tilings, the caps and the device peaks.
Evaluated evaluate(const Problem& pr, const std::vector<Tiling>& tiling) {
  const int D = pr.D, S = 2 * D, T = pr.period;
  PaciVPattern p;
  p.period = T;
  p.f.assign(S, 0);
  p.b.assign(S, 0);
  long ready = 0;
  for (auto [d, k] : pass(D)) {
    const long t = ready + pr.mod(tiling[d][k] - ready);
    (k < 2 ? p.f : p.b)[pr.stage(d, k)] = static_cast<int>(t);
    ready = t + pr.len(d, k);
  }
  p.cap.resize(S);
  double held = 0;  // memory x time over one pass
  for (int s = 0; s < S; ++s) {
    const int L = p.b[s] + pr.b[s] - p.f[s];
    p.cap[s] = (L + T - 1) / T;
    held += pr.act[s] * L;
  }
  p.device_peak.assign(D, 0);
  double top = 0, sum = 0;
  for (int d = 0; d < D; ++d) {
    double most = 0;
    for (int x = 0; x < T; ++x) {  // in flight at time x of the steady state
      int n = 0;
      double bytes = 0;
      for (int s : {d, S - 1 - d}) {
        const long start = p.f[s], end = p.b[s] + pr.b[s];  // held over [start + kT, end + kT)
        const int k = floor_div(x - start, T) - floor_div(x - end, T);
        n += k;
        bytes += k * pr.act[s];
      }
      p.device_peak[d] = std::max(p.device_peak[d], n);
      most = std::max(most, bytes);
    }
    top = std::max(top, most);
    sum += most;
  }
  return {p, {top, sum, held}};
}

// First fit: the pass's actions in order, each at the earliest time whose phase some tiling
// of its device still allows together with the phases chosen before.
std::vector<Tiling> first_fit(const Problem& pr, const std::vector<std::vector<Tiling>>& all) {
  std::vector<std::vector<Tiling>> open = all;
  long ready = 0;
  for (auto [d, k] : pass(pr.D)) {
    for (long t = ready;; ++t) {
      std::vector<Tiling> keep;
      for (const Tiling& x : open[d])
        if (x[k] == pr.mod(t)) keep.push_back(x);
      if (keep.empty()) continue;
      open[d] = std::move(keep);
      ready = t + pr.len(d, k);
      break;
    }
  }
  std::vector<Tiling> out;
  for (const auto& o : open) out.push_back(o.front());  // every phase is fixed now
  return out;
}

PaciVPattern solve(const Problem& pr) {
  std::vector<std::vector<Tiling>> all;
  for (int d = 0; d < pr.D; ++d) all.push_back(tilings(pr, d));
  std::vector<Tiling> tiling = first_fit(pr, all);
  Evaluated best = evaluate(pr, tiling);
  for (bool improved = true; improved;) {
    improved = false;
    for (int d = 0; d < pr.D; ++d)
      for (const Tiling& x : all[d]) {
        const Tiling old = tiling[d];
        tiling[d] = x;
        Evaluated e = evaluate(pr, tiling);
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

// Durations in whole units: the largest device load is resolved to about 1/48 (coarser from
// D = 17 on, down to 1/12, so that the search stays under a second), and lengths are
// divided by their common divisor (F = 1, B = 2 everywhere gives 1 and 2).
Problem quantise(int D, const PaciVCosts& c) {
  const int S = 2 * D;
  Problem pr;
  pr.D = D;
  double top = 0;
  for (int d = 0; d < D; ++d) top = std::max(top, c.f[d] + c.b[d] + c.f[S - 1 - d] + c.b[S - 1 - d]);
  const double unit = top / std::clamp(768 / D, 12, 48);
  auto units = [&](double x) { return std::max(1, static_cast<int>(std::lround(x / unit))); };
  int g = 0;
  for (int s = 0; s < S; ++s) {
    pr.f.push_back(units(c.f[s]));
    pr.b.push_back(units(c.b[s]));
    g = std::gcd(g, std::gcd(pr.f.back(), pr.b.back()));
  }
  for (int s = 0; s < S; ++s) pr.f[s] /= g, pr.b[s] /= g;
  for (int d = 0; d < D; ++d) pr.period = std::max(pr.period, pr.f[d] + pr.b[d] + pr.f[S - 1 - d] + pr.b[S - 1 - d]);
  pr.act = c.act.empty() ? std::vector<double>(S, 1.0) : c.act;
  return pr;
}

void check_costs(int D, const PaciVCosts& c) {
  const size_t S = 2 * static_cast<size_t>(D);
  if (c.f.size() != S || c.b.size() != S || (!c.act.empty() && c.act.size() != S))
    throw std::invalid_argument("paci-v: one F and B cost (and activation) per stage of the V is needed");
  for (size_t s = 0; s < S; ++s)
    if (!(c.f[s] > 0) || !(c.b[s] > 0) || !std::isfinite(c.f[s]) || !std::isfinite(c.b[s]))
      throw std::invalid_argument("paci-v: F and B costs must be finite and > 0");
}

}  // namespace

PaciVPattern paci_v_pattern(int D, const PaciVCosts& costs) {
  if (costs.f.empty()) {  // F = 1, B = 2 on every stage
    PaciVCosts uniform{std::vector<double>(2 * D, 1.0), std::vector<double>(2 * D, 2.0), {}};
    return solve(quantise(D, uniform));
  }
  check_costs(D, costs);
  return solve(quantise(D, costs));
}

int paci_v_cap(int D, int s) { return paci_v_pattern(D).cap.at(s); }

Schedule gen_paci_v(int D, int M, int N, int a, const PaciVCosts& costs) {
  const int S = 2 * D, T = M * N;
  const PaciVPattern p = paci_v_pattern(D, costs);
  Schedule sch;
  sch.name = "paci-v";
  sch.spec = {D, 2, M, N};
  sch.accum = a;
  sch.policy = WeightPolicy::kCurrent;
  sch.stage_device = v_placement(D);
  sch.programs.resize(D);
  // Each device's actions keyed by twice their start in the periodic run, an OPT by its B's
  // plus one: right after that B, before whatever starts later.
  std::vector<std::vector<std::pair<long long, Action>>> timed(D);
  for (int s = 0; s < S; ++s) {
    auto& out = timed[sch.stage_device[s]];
    for (int m = 0; m < T; ++m) {
      const long long shift = static_cast<long long>(p.period) * m;
      out.emplace_back(2 * (p.f[s] + shift), Fwd(s, m));
      out.emplace_back(2 * (p.b[s] + shift), Bwd(s, m));
      if ((m + 1) % a == 0) out.emplace_back(2 * (p.b[s] + shift) + 1, Opt(s));
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
