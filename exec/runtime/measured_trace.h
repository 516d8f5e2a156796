// The executor's record of a run in the trace format the simulator also writes
// (schedules/trace), so that one set of metric functions measures both.
#pragma once

#include "exec/runtime/trainer.h"
#include "schedules/trace/trace.h"

namespace paci {

// Actions with their measured times and versions; activation memory per device as a
// timeline (a slot is taken when F starts and given back when B or W ends); static memory
// from the stage models (weights, grads, AdamW state, peak stashed copies).
Trace measured_trace(const Schedule& schedule, const std::vector<ActionRecord>& actions,
                     const std::vector<StageMemory>& memory, int micro_batch, int seq_len,
                     const std::string& executor = "cpu executor");  // what ran it, for the trace

}  // namespace paci
