// zb-h1 (Zero Bubble, Qi et al., 2024, handcrafted H1): the backward is split into I (input
// gradient, on the critical path) and W (weight gradient, deferrable). Stage s warms up with
// 1F1B's min(P-s, M) forwards, then repeats I, W, F ("1F-1B-1W") while deferring its W's by
// s positions; the cool-down drains the deferred W's, filling the bubble 1F1B leaves there.
//   bubble: (P-1)(F+I-W) per stage, a third of 1F1B's (P-1)(F+I+W) when F = I = W and M >= P.
//   memory: at most min(P, M) micro-batches from F to W on every stage: 1F1B's peak (its
//           first stage's); later stages hold more than under 1F1B. One weight copy.
#include <algorithm>
#include <deque>

#include "schedules/gen/generators.h"

namespace paci {

Schedule gen_zb_h1(int P, int M, int N) {
  Schedule s = linear_skeleton("zb-h1", P, M, N, M, WeightPolicy::kCurrent);
  for (int st = 0; st < P; ++st) {
    auto& prog = s.programs[st];
    prog.reserve(static_cast<size_t>(N) * (3 * M + 1));  // its final size: no regrowth
    for (int k = 0; k < N; ++k) {
      const int base = k * M;
      const int warmup = std::min(P - st, M);
      int f = 0;
      std::deque<int> deferred;
      for (; f < warmup; ++f) prog.push_back(Fwd(st, base + f));
      for (int j = 0; j < M; ++j) {
        prog.push_back(BwdI(st, base + j));
        deferred.push_back(j);
        if (static_cast<int>(deferred.size()) > st || f >= M) {
          prog.push_back(BwdW(st, base + deferred.front()));
          deferred.pop_front();
        }
        if (f < M) prog.push_back(Fwd(st, base + f++));
      }
      for (int j : deferred) prog.push_back(BwdW(st, base + j));
      prog.push_back(Opt(st));
    }
  }
  s.bounds.max_drift.assign(P, 0);
  s.bounds.max_delay.assign(P, 0);
  s.bounds.max_inflight.assign(P, std::min(P, M));
  s.bounds.max_weight_copies.assign(P, 1);
  return s;
}

}  // namespace paci
