// The unit-time list scheduler behind the V-shaped and interleaved zero-bubble generators
// (zb-v, v-half, v-min, interleaved-zb): it plays the pipeline forward in time
// with fixed durations and records the order each device ran as its program.
//
// Whenever a device is free it runs, in this order of preference:
//   1. the oldest input-gradient I that is ready on any of its stages (ties: the later stage,
//      whose output unblocks more of the pipeline);
//   2. the next forward of one of its stages that is ready and admitted by the memory caps
//      (ties: the later stage, which brings a micro-batch closer to its backward);
//   3. the oldest pending W, which fills what would be a bubble;
// otherwise it waits for the next input to arrive. Every stage takes its micro-batches in
// order (forwards and backwards alike). Ties between devices go to the lower index.
//
// The memory cap counts activation slots of all of a device's stages (one per forward whose
// W has not run). A device with k stages admits a forward of its j-th stage (0-based, in the
// order a micro-batch visits them) only if k - 1 - j slots stay free after it. With a cap of
// at least k this cannot deadlock: stages take micro-batches in order, so when the oldest
// unfinished micro-batch reaches its j-th stage on a device, the newer ones there hold slots
// of earlier stages only, each admitted with k - 1 - j' > k - 1 - j slots left free, so at
// least one slot is free for it.
#include <algorithm>
#include <climits>
#include <deque>
#include <limits>
#include <stdexcept>

#include "schedules/gen/generators.h"

namespace paci {

std::vector<std::vector<Action>> list_schedule(const ListScheduleOptions& o) {
  const int S = static_cast<int>(o.stage_device.size());
  const int T = o.microbatches;
  int D = 0;
  for (int d : o.stage_device) D = std::max(D, d + 1);
  constexpr double kNever = std::numeric_limits<double>::infinity();
  std::vector<std::vector<int>> stages_of(D);
  for (int s = 0; s < S; ++s) stages_of[o.stage_device[s]].push_back(s);
  const double fd = o.f, id = o.i, wd = o.w;
  // When each input is known: the forward input of (s, m), F(s, m) done, the gradient input.
  std::vector<std::vector<double>> f_in(S, std::vector<double>(T, kNever));
  std::vector<std::vector<double>> f_done = f_in, g_in = f_in;
  for (int m = 0; m < T; ++m) f_in[0][m] = 0, g_in[S - 1][m] = 0;
  std::vector<int> next_f(S, 0), next_b(S, 0);
  std::vector<std::deque<int>> pending_w(S);
  std::vector<double> free_at(D, 0);
  std::vector<int> used(D, 0), rank(S, 0);
  for (int d = 0; d < D; ++d)
    for (size_t j = 0; j < stages_of[d].size(); ++j) rank[stages_of[d][j]] = static_cast<int>(j);
  std::vector<std::vector<Action>> progs(D);
  const int cap = o.device_cap > 0 ? o.device_cap : INT_MAX;
  auto admissible = [&](int s) {
    const int d = o.stage_device[s];
    if (next_f[s] >= T) return false;
    const int keep_free = static_cast<int>(stages_of[d].size()) - 1 - rank[s];
    return used[d] + 1 + keep_free <= cap;
  };
  const size_t total = static_cast<size_t>(S) * T * 3;
  enum Pick { kNone, kB, kF, kW };
  for (size_t done = 0; done < total; ++done) {
    int best_d = -1, best_s = -1;
    double best_t = kNever;
    Pick best = kNone;
    for (int d = 0; d < D; ++d) {
      double tb = kNever, tf = kNever, tw = kNever;
      for (int s : stages_of[d]) {
        if (next_b[s] < T) tb = std::min(tb, std::max(f_done[s][next_b[s]], g_in[s][next_b[s]]));
        if (admissible(s)) tf = std::min(tf, f_in[s][next_f[s]]);
        if (!pending_w[s].empty()) tw = free_at[d];
      }
      const double t = std::max(free_at[d], std::min({tb, tf, tw}));
      if (t == kNever || t >= best_t) continue;
      Pick pick = tb <= t ? kB : tf <= t ? kF : kW;
      int chosen = -1;
      for (int s : stages_of[d]) {
        if (pick == kB && next_b[s] < T && std::max(f_done[s][next_b[s]], g_in[s][next_b[s]]) <= t &&
            (chosen < 0 || next_b[s] < next_b[chosen] || (next_b[s] == next_b[chosen] && s > chosen)))
          chosen = s;
        if (pick == kF && admissible(s) && f_in[s][next_f[s]] <= t) chosen = s;  // the later stage
        if (pick == kW && !pending_w[s].empty() &&
            (chosen < 0 || pending_w[s].front() < pending_w[chosen].front()))
          chosen = s;
      }
      best_d = d, best_s = chosen, best_t = t, best = pick;
    }
    if (best_d < 0) throw std::logic_error("list_schedule: no device can proceed");
    const int d = best_d, s = best_s;
    auto& prog = progs[d];
    double end = best_t;
    if (best == kF) {
      const int m = next_f[s]++;
      prog.push_back(Fwd(s, m));
      end += fd;
      ++used[d];
      f_done[s][m] = end;
      if (s + 1 < S) f_in[s + 1][m] = end;
    } else if (best == kB) {
      const int m = next_b[s]++;
      prog.push_back(BwdI(s, m));
      end += id;
      if (s > 0) g_in[s - 1][m] = end;
      pending_w[s].push_back(m);
    } else {
      const int m = pending_w[s].front();
      pending_w[s].pop_front();
      prog.push_back(BwdW(s, m));
      end += wd;
      --used[d];
    }
    free_at[d] = end;
  }
  return progs;
}

std::vector<int> v_placement(int D) {
  std::vector<int> map(2 * D);
  for (int s = 0; s < 2 * D; ++s) map[s] = s < D ? s : 2 * D - 1 - s;
  return map;
}

Schedule flush_steps(const char* name, int D, int v, int M, int N, std::vector<int> stage_device,
                     const std::vector<std::vector<Action>>& step) {
  Schedule s;
  s.name = name;
  s.spec = {D, v, M, N};
  s.accum = M;
  s.policy = WeightPolicy::kCurrent;
  s.stage_device = std::move(stage_device);
  s.programs.resize(D);
  const int S = s.stages();
  for (int d = 0; d < D; ++d) {
    auto& prog = s.programs[d];
    prog.reserve((step[d].size() + v) * N);
    for (int n = 0; n < N; ++n) {
      for (Action a : step[d]) {
        a.mb += n * M;
        if (a.kind == ActionKind::FB) a.mb_b += n * M;
        prog.push_back(a);
      }
      for (int st = 0; st < S; ++st)
        if (s.stage_device[st] == d) prog.push_back(Opt(st));
    }
  }
  s.bounds.max_drift.assign(S, 0);
  s.bounds.max_delay.assign(S, 0);
  s.bounds.max_weight_copies.assign(S, 1);
  return s;
}

}  // namespace paci
