// v-half (V-Half, Qi et al., "Pipeline Parallelism with Controllable Memory", arXiv
// 2405.15362): the V placement of zb-v (device d holds stages d and 2D-1-d, split backward)
// with about half of 1F1B's activation memory: each device holds at most D + 1 stage
// activations (1F1B's first device holds 2D: D micro-batches of a device's share, a stage
// being half of one). Built by the list scheduler (list_schedule.cc) with F = I = W = 1.
//   bubble: about p/(2m) of the step in the paper; the README's table gives the measured one.
//   memory: <= D + 1 stage activations per device, (D + 1) / (2D) of 1F1B's peak.
#include "schedules/gen/generators.h"

namespace paci {

Schedule gen_v_half(int D, int M, int N) {
  ListScheduleOptions o;
  o.stage_device = v_placement(D);
  o.microbatches = M;
  o.device_cap = v_half_cap(D);
  return flush_steps("v-half", D, 2, M, N, o.stage_device, list_schedule(o));
}

}  // namespace paci
