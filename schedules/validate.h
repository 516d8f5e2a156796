// Validation of any schedule, generated or imported.
#pragma once

#include <vector>

#include "schedules/analysis.h"
#include "schedules/graph.h"
#include "schedules/ir.h"

namespace paci {

// Checks, in order: structure (one F and one B, or one I and one W, per (stage,
// micro-batch); stages on their devices; ids in range), the device programs run in order
// without deadlock (which also proves the dependency graph acyclic: the order they ran in
// is a topological order), every OPT applies exactly one global batch, and the schedule's
// declared bounds hold. Returns the static analysis; throws ScheduleError (one-line what(),
// excerpt in context()).
Analysis validate(const Schedule& s);

// validate() without the in-order run, for a caller that runs the programs in order itself
// (the simulator) and calls validate() when that run or this check fails, so that errors
// stay validate()'s, in its order. Takes the caller's index of the schedule (built from it:
// the structure check; the spec is checked here all the same) and returns the per-stage
// facts of validate()'s analysis (analyze_stages: no per-micro-batch facts).
std::vector<StageFacts> validate_except_order(const Schedule& s, const ActionIndex& index);

}  // namespace paci
