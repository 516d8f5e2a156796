// interleaved-zb (PyTorch torch.distributed.pipelining ScheduleInterleavedZeroBubble; Zero
// Bubble, Qi et al., arXiv 2401.10241, on Megatron's virtual pipeline): interleaved-1f1b's
// placement (D devices, v stages each, stage s on device s mod D) with the backward split
// into I and W, the W's moved into what would be bubbles. Built by the list scheduler
// (list_schedule.cc) with F = I = W = 1 per stage, a device holding no more stage
// activations than interleaved-1f1b's first device: min(v*M, (v+1)D - 1).
//   bubble: below interleaved-1f1b's (D-1)/(v*M) of the ideal step: the W's fill the
//           warm-up and cool-down gaps (the README's table gives the measured one).
//   memory: <= min(v*M, (v+1)D - 1) stage activations per device, interleaved-1f1b's peak.
#include <algorithm>

#include "schedules/gen/generators.h"

namespace paci {

int interleaved_zb_cap(int D, int M, int v) { return std::min(v * M, (v + 1) * D - 1); }

Schedule gen_interleaved_zb(int D, int M, int N, int v) {
  ListScheduleOptions o;
  o.stage_device.resize(D * v);
  for (int s = 0; s < D * v; ++s) o.stage_device[s] = s % D;
  o.microbatches = M;
  o.device_cap = interleaved_zb_cap(D, M, v);
  return flush_steps("interleaved-zb", D, v, M, N, o.stage_device, list_schedule(o));
}

}  // namespace paci
