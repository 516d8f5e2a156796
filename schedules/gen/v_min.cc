// v-min (V-Min, Qi et al., "Pipeline Parallelism with Controllable Memory", arXiv
// 2405.15362): the V placement of zb-v (device d holds stages d and 2D-1-d, split backward)
// with about a third of 1F1B's activation memory: each device holds at most
// ceil(2D/3) + 1 stage activations, against 2D on 1F1B's first device. Built by the list
// scheduler (list_schedule.cc) with F = I = W = 1.
//   bubble: about 2p/(3m) of the step in the paper, a little more than 1F1B's at small M; the
//           README's table gives the measured one.
//   memory: <= ceil(2D/3) + 1 stage activations per device.
#include "schedules/gen/generators.h"

namespace paci {

int v_min_cap(int D) { return (2 * D + 2) / 3 + 1; }

Schedule gen_v_min(int D, int M, int N) {
  ListScheduleOptions o;
  o.stage_device = v_placement(D);
  o.microbatches = M;
  o.device_cap = v_min_cap(D);
  return flush_steps("v-min", D, 2, M, N, o.stage_device, list_schedule(o));
}

}  // namespace paci
