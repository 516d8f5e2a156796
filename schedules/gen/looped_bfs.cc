// looped-bfs (PyTorch torch.distributed.pipelining ScheduleLoopedBFS; breadth-first
// pipelining, Lamy-Poirier, arXiv 2211.05953): D devices hold v stages each in a loop, stage
// s on device s mod D. Each device runs all M forwards of its first stage, then of its next,
// ...; then the backwards, its last stage first, each stage's micro-batches in order
// (PyTorch takes them in reverse; in order, every stage sums its weight gradients in
// micro-batch order, so a run equals one stage bit for bit); OPTs after the flush.
//   bubble: (D-1)/(v*M + D-1) of the step with uniform costs when M >= D (a stage's forwards
//           keep its device busy until the loop brings micro-batch 0 back), GPipe's with v
//           times more, shorter, actions.
//   memory: all v*M stage activations of a step on every device (GPipe's, in chunks of 1/v).
#include "schedules/gen/generators.h"

namespace paci {

Schedule gen_looped_bfs(int D, int M, int N, int v) {
  std::vector<int> map(D * v);
  for (int s = 0; s < D * v; ++s) map[s] = s % D;
  std::vector<std::vector<Action>> step(D);
  for (int d = 0; d < D; ++d) {
    for (int k = 0; k < v; ++k)
      for (int m = 0; m < M; ++m) step[d].push_back(Fwd(k * D + d, m));
    for (int k = v - 1; k >= 0; --k)
      for (int m = 0; m < M; ++m) step[d].push_back(Bwd(k * D + d, m));
  }
  Schedule s = flush_steps("looped-bfs", D, v, M, N, map, step);
  s.bounds.max_inflight.assign(D * v, M);
  return s;
}

}  // namespace paci
