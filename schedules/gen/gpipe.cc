// gpipe (Huang et al., 2019): every step runs all M forwards, then all M backwards, then the
// optimizer step (a flush).
//   bubble:   (P-1)/(M+P-1) of the step with uniform stage costs.
//   memory:   M micro-batches of activations on every stage; one consistent weight copy.
#include "schedules/gen/generators.h"

namespace paci {

Schedule gen_gpipe(int P, int M, int N) {
  Schedule s = linear_skeleton("gpipe", P, M, N, M, WeightPolicy::kCurrent);
  for (int st = 0; st < P; ++st) {
    auto& prog = s.programs[st];
    prog.reserve(static_cast<size_t>(N) * (2 * M + 1));  // its final size: no regrowth
    for (int k = 0; k < N; ++k) {
      for (int j = 0; j < M; ++j) prog.push_back(Fwd(st, k * M + j));
      for (int j = 0; j < M; ++j) prog.push_back(Bwd(st, k * M + j));
      prog.push_back(Opt(st));
    }
  }
  s.bounds.max_drift.assign(P, 0);
  s.bounds.max_delay.assign(P, 0);
  s.bounds.max_inflight.assign(P, M);
  s.bounds.max_weight_copies.assign(P, 1);
  return s;
}

}  // namespace paci
