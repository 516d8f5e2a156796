// The trace format: what happened when a schedule ran, in time. The simulator writes
// predicted traces and the executor measured ones, in this one format, so that every metric
// (metrics.h) is computed by one function whoever wrote the trace and predicted-vs-measured
// is a diff of two traces. Backend-neutral: times in seconds from the start of the run,
// memory in bytes (the uniform cost model uses abstract units), no tensors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "schedules/ir.h"

namespace paci {

inline constexpr int kTraceFormatVersion = 1;

// One action as it ran on its device.
struct TraceAction {
  Action action;
  int device = 0;
  int pos = -1;        // position in the device's program as run; orders zero-length actions
  double start = 0;    // seconds
  double end = 0;
  // The weight version of action.stage the action used (number of that stage's optimizer
  // steps applied to the weights it computed with; the weight policy decides for B/I/W).
  // For OPT: the version it replaced (its update index), so OPT k produces version k+1.
  int version = 0;
  // FB only: the version of action.stage_b its backward half used (version is its forward's).
  int version_b = 0;
};

// A point-to-point transfer from the producer's device to the consumer's device. It holds
// the sender's send link and the receiver's receive link from start to end. The producer
// and the consumer are indices into Trace::actions (40 bytes a transfer, not two Actions).
struct TraceTransfer {
  int32_t from = -1, to = -1;
  int src = 0, dst = 0;
  double start = 0, end = 0;
  double bytes = 0;
};

// Memory that stays while the run lasts, per device: the parameters, their gradients, the
// optimizer state and extra weight copies the schedule's policy keeps (stash, double buffer).
struct StaticMemory {
  double weights = 0, grads = 0, optimizer = 0, stashed = 0;
  double workspace = 0;  // scratch and message buffers held for the whole run
  double total() const { return weights + grads + optimizer + stashed + workspace; }
};

// The device's memory above its StaticMemory (activations kept for backwards, and for a
// measured run whatever else varies) becomes `bytes` at `time`; 0 before its first sample.
struct MemorySample {
  double time = 0;
  int device = 0;
  double bytes = 0;
};

struct Trace {
  std::string schedule;            // schedule name
  std::string origin;              // "simulated", "measured", ...
  std::string cost;                // what produced the durations (cost model, backend)
  PipelineSpec spec;
  int accum = 1;
  WeightPolicy policy = WeightPolicy::kCurrent;
  std::vector<int> stage_device;
  double samples_per_microbatch = 1;   // for throughput
  double tokens_per_microbatch = 0;    // 0 = unknown
  std::string memory_unit = "B";       // "B" for bytes; cost models without sizes use "slots"
  std::vector<StaticMemory> static_memory;  // per device
  std::vector<TraceAction> actions;    // any order
  std::vector<TraceTransfer> transfers;
  std::vector<MemorySample> memory;    // in time order per device

  int devices() const { return spec.devices; }
  int stages() const { return static_cast<int>(stage_device.size()); }
};

// Checks what every metric relies on: devices and stages in range, end >= start, one
// stage_device entry per stage, one static_memory entry per device, transfers between
// actions of the trace. Throws
// std::invalid_argument with one line naming the first bad record.
void check_trace(const Trace& t);

}  // namespace paci
