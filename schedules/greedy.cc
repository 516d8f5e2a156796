#include "schedules/greedy.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <stdexcept>

namespace paci {

std::vector<std::vector<Action>> greedy_split_backward(const GreedyOptions& o) {
  const int P = o.stages, M = o.microbatches;
  constexpr double kNever = std::numeric_limits<double>::infinity();
  // Ready times of inputs, known once the producer is scheduled.
  std::vector<std::vector<double>> f_ready(P, std::vector<double>(M, kNever));
  std::vector<std::vector<double>> i_ready(P, std::vector<double>(M, kNever));
  for (int m = 0; m < M; ++m) f_ready[0][m] = 0;
  std::vector<double> free_at(P, 0);
  std::vector<int> next_f(P, 0), next_i(P, 0), inflight(P, 0);
  std::vector<std::deque<int>> pending_w(P);
  std::vector<std::vector<Action>> progs(P);
  const size_t total = static_cast<size_t>(P) * M * 3;
  size_t scheduled = 0;
  enum Pick { kNone, kI, kF, kW };
  while (scheduled < total) {
    int best = -1;
    double best_t = kNever;
    Pick best_pick = kNone;
    for (int s = 0; s < P; ++s) {
      double ti = next_i[s] < M ? i_ready[s][next_i[s]] : kNever;
      double tf = (next_f[s] < M && inflight[s] < o.max_inflight[s]) ? f_ready[s][next_f[s]] : kNever;
      double tw = pending_w[s].empty() ? kNever : free_at[s];
      double t = std::max(free_at[s], std::min({ti, tf, tw}));
      if (t == kNever) continue;
      Pick pick = ti <= t ? kI : tf <= t ? kF : kW;
      if (t < best_t) best = s, best_t = t, best_pick = pick;
    }
    if (best < 0) throw std::logic_error("greedy_split_backward: no stage can proceed");
    const int s = best;
    double end = 0;
    switch (best_pick) {
      case kI: {
        int m = next_i[s]++;
        progs[s].push_back(BwdI(s, m));
        end = best_t + o.i[s];
        if (s > 0) i_ready[s - 1][m] = end + o.comm;
        pending_w[s].push_back(m);
        break;
      }
      case kF: {
        int m = next_f[s]++;
        progs[s].push_back(Fwd(s, m));
        end = best_t + o.f[s];
        ++inflight[s];
        if (s + 1 < P) f_ready[s + 1][m] = end + o.comm;
        else i_ready[s][m] = end;
        break;
      }
      case kW: {
        int m = pending_w[s].front();
        pending_w[s].pop_front();
        progs[s].push_back(BwdW(s, m));
        end = best_t + o.w[s];
        --inflight[s];
        break;
      }
      case kNone:
        break;
    }
    free_at[s] = end;
    ++scheduled;
  }
  return progs;
}

}  // namespace paci
