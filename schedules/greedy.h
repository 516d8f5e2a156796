// A greedy list scheduler for split-backward (zero-bubble) pipelines: the engine behind the
// cost-model-driven zb-1p / zb-2p (sim/zero_bubble.cc). (zb-h1 is a closed-form construction
// of its own, schedules/gen/zb_h1.cc.)
#pragma once

#include <vector>

#include "schedules/ir.h"

namespace paci {

struct GreedyOptions {
  int stages = 1;        // P, stage s on device s
  int microbatches = 1;  // M, one flush step (micro-batches 0..M-1)
  // Per-stage durations of F, I (input gradient) and W (weight gradient).
  std::vector<double> f, i, w;
  double comm = 0;                 // latency between neighbouring stages
  std::vector<int> max_inflight;   // activation slots per stage (F done, W not done)
};

// Simulates the pipeline in time: whenever a stage is free it runs, in this order of
// preference, the next input-gradient I that is ready, else the next forward if a slot is
// free, else the oldest pending weight-gradient W; otherwise it waits. The order each stage
// realised is its program (no OPT). Deterministic; ties broken by stage index.
std::vector<std::vector<Action>> greedy_split_backward(const GreedyOptions& opt);

}  // namespace paci
