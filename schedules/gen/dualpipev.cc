// dualpipev (DeepSeek's DualPipeV, github.com/deepseek-ai/DualPipe, dualpipev.py; PyTorch
// torch.distributed.pipelining ScheduleDualPipeV): DualPipe cut in half into a V on D
// devices, device d holding stages d ("chunk 0") and 2D-1-d ("chunk 1"). The main phase
// runs a forward of one chunk overlapped with a backward of the other as one FB action
// (F&B, its own cost `fb`), which hides the communication of one behind the compute of the
// other; the ends use the zero-bubble split (I, then W later) to fill the gaps. Per device
// d, with counters per chunk so each chunk takes its micro-batches in order:
//   1. 2(D-1-d) x F0            2. (d+1) x (F0 F1)         3. (D-1-d) x (I1 W F1)
//   4. M-2D+d+1 x (F0&B1, F1&B0)   (on the last device the first F0, B1 not overlapped)
//   5. (D-1-d) x (B1, F1&B0)    6. (d+1) x (B1 B0), the second half split (I) 
//   7. (D-1-d) x (W, I0)        8. (d+1) x W
// Requires M >= 2D. OPTs after the flush.
//   bubble: the DualPipe README gives (PP/2-1)(F&B + B - 3W) for PP stages, here
//           (D-1)(FB + B - 3W) per device with F, B, W, FB of one stage.
//   memory: PP+1 = 2D+1 stage activations on a device at most (the README's "PP+1"), and one
//           weight copy per stage (DualPipe needs two; the V does not).
#include <deque>
#include <utility>

#include "schedules/gen/generators.h"

namespace paci {

Schedule gen_dualpipev(int D, int M, int N) {
  std::vector<std::vector<Action>> step(D);
  for (int d = 0; d < D; ++d) {
    auto& prog = step[d];
    const int stage[2] = {d, 2 * D - 1 - d};
    int f[2] = {0, 0}, b[2] = {0, 0};
    std::deque<std::pair<int, int>> weights;  // (stage, mb) of I's whose W is pending
    auto F = [&](int c) { prog.push_back(Fwd(stage[c], f[c]++)); };
    auto B = [&](int c, bool split) {
      if (split) {
        prog.push_back(BwdI(stage[c], b[c]));
        weights.emplace_back(stage[c], b[c]);
      } else {
        prog.push_back(Bwd(stage[c], b[c]));
      }
      ++b[c];
    };
    auto W = [&] {
      prog.push_back(BwdW(weights.front().first, weights.front().second));
      weights.pop_front();
    };
    auto FB = [&](int cf, int cb) {
      prog.push_back(FwdBwd(stage[cf], f[cf]++, stage[cb], b[cb]++));
    };
    const int rest = D - 1 - d;
    for (int i = 0; i < 2 * rest; ++i) F(0);
    for (int i = 0; i < d + 1; ++i) F(0), F(1);
    for (int i = 0; i < rest; ++i) B(1, true), W(), F(1);
    for (int i = 0; i < M - 2 * D + d + 1; ++i) {
      if (i == 0 && d == D - 1) {
        F(0), B(1, false);
      } else {
        FB(0, 1);
      }
      FB(1, 0);
    }
    for (int i = 0; i < rest; ++i) B(1, false), FB(1, 0);
    bool split = false;
    for (int i = 0; i < d + 1; ++i) {
      if (i == (d + 1) / 2 && d % 2 == 1) split = true;
      B(1, split);
      if (i == (d + 1) / 2 && d % 2 == 0) split = true;
      B(0, split);
    }
    for (int i = 0; i < rest; ++i) W(), B(0, true);
    while (!weights.empty()) W();
  }
  Schedule s = flush_steps("dualpipev", D, 2, M, N, v_placement(D), step);
  s.bounds.max_inflight.assign(2 * D, M);
  return s;
}

}  // namespace paci
