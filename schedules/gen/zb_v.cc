// zb-v (Zero Bubble's ZB-V, Qi et al., arXiv 2401.10241, section 6; PyTorch
// torch.distributed.pipelining ScheduleZBVZeroBubble): the model is cut into 2D stages on D
// devices in a V, device d holding stages d ("chunk 0") and 2D-1-d ("chunk 1"), so a
// micro-batch goes down the devices and back up and both its first and its last stage are on
// device 0. The backward is split into I and W. With M >= 2D-1, device d runs (counters per
// chunk, each taking its micro-batches in order):
//   warm-up:   2(D-d)-1 x F0;  d x (F1 F0);  D-d x (F1 I1 W1)
//   steady:    until all forwards ran: (F0 if any left) I0 W0 F1 I1 W1
//   cool-down: d x (I0 I1);  D-d x (I0 W0);  the remaining W1's, then W0's
// For M < 2D-1 that pattern would need micro-batches that do not exist; the order then comes
// from the list scheduler (list_schedule.cc) with F = I = W = 1 under the same memory cap.
// Each step is flushed and ends with the OPTs.
//   bubble: the paper gives (p-1)(T_F + T_B - 2T_W) per device (T_* of a device's share):
//           0 when F = B = W, meaning no idle time beyond the fill no schedule avoids (the last
//           device cannot start before D-1 forwards ran): each device idles (D-1) F of one stage.
//   memory: at most 2D stage activations per device = D micro-batches of a device's share,
//           1F1B's first-device peak.
#include "schedules/gen/generators.h"

namespace paci {

Schedule gen_zb_v(int D, int M, int N) {
  ListScheduleOptions o;
  o.stage_device = v_placement(D);
  o.microbatches = M;
  o.device_cap = zb_v_cap(D);
  if (M < 2 * D - 1) return flush_steps("zb-v", D, 2, M, N, o.stage_device, list_schedule(o));
  std::vector<std::vector<Action>> step(D);
  for (int d = 0; d < D; ++d) {
    auto& prog = step[d];
    const int stage[2] = {d, 2 * D - 1 - d};
    int f[2] = {0, 0}, b[2] = {0, 0}, w[2] = {0, 0};
    auto F = [&](int c) { prog.push_back(Fwd(stage[c], f[c]++)); };
    auto I = [&](int c) { prog.push_back(BwdI(stage[c], b[c]++)); };
    auto W = [&](int c) { prog.push_back(BwdW(stage[c], w[c]++)); };
    for (int i = 0; i < 2 * (D - d) - 1; ++i) F(0);
    for (int i = 0; i < d; ++i) F(1), F(0);
    for (int i = 0; i < D - d; ++i) F(1), I(1), W(1);
    while (f[1] < f[0] || f[0] < M) {
      if (f[0] < M) F(0);
      I(0), W(0);
      F(1), I(1), W(1);
    }
    for (int i = 0; i < d; ++i) I(0), I(1);
    for (int i = 0; i < D - d; ++i) I(0), W(0);
    while (w[1] < b[1]) W(1);
    while (w[0] < b[0]) W(0);
  }
  return flush_steps("zb-v", D, 2, M, N, o.stage_device, step);
}

}  // namespace paci
