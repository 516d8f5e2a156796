// Static analysis of a schedule: what the IR alone determines about weight versions,
// drift, gradient delay and memory, per (stage, micro-batch) and per stage.
#pragma once

#include <vector>

#include "schedules/graph.h"
#include "schedules/ir.h"

namespace paci {

// Facts about one micro-batch on one stage. Versions count the stage's optimizer steps:
// version k is the weights after k OPTs of that stage.
struct MicrobatchFacts {
  int v_fwd = 0;   // version the forward used
  int v_bwd = 0;   // version the backward (B, or I) used: the policy decides
  int drift = 0;   // v_bwd - v_fwd: updates crossed between forward and backward
  int delay = 0;   // version the gradient is applied to - v_fwd
  int opt = -1;    // index of the stage's OPT that applies this gradient
};

struct StageFacts {
  int inflight_peak = 0;    // activation slots: forwards whose backward (B or W) is not done
  // Under recompute those slots hold the stage inputs only; one micro-batch's whole
  // activations exist only while its B reruns the forward and runs the backward.
  bool inputs_only = false;
  int weight_copies = 1;    // distinct weight versions held at once (current + stashed)
  int updates = 0;          // OPTs of the stage
  int max_drift = 0;
  double mean_drift = 0;
  // Mean over the steady state: micro-batches from the first global batch that starts
  // after the pipeline has filled (index >= S-1) to the last complete batch.
  double steady_mean_drift = 0;
  int max_delay = 0;
  double mean_delay = 0;
};

struct Analysis {
  std::vector<StageFacts> stages;
  std::vector<std::vector<MicrobatchFacts>> mb;  // [stage][micro-batch]
  // Per device: the most forwards whose backward (B, or W) has not completed, over all its
  // stages, in program order. Each counts one stage's activations of a micro-batch, 1/v of a
  // device's share when the device holds v stages.
  std::vector<int> device_inflight_peak;
};

// Requires a structurally valid schedule (the ActionIndex built). Throws ScheduleError when
// an OPT does not consume exactly one global batch, or a double-buffered forward needs a
// version the stage has not produced yet.
Analysis analyze(const Schedule& s, const ActionIndex& index);
Analysis analyze(const Schedule& s);
// analyze()'s per-stage facts (Analysis::stages) alone, with the same checks: one stage's
// micro-batch facts at a time, not all of them.
std::vector<StageFacts> analyze_stages(const Schedule& s, const ActionIndex& index);

}  // namespace paci
