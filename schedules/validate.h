// Validation of any schedule, generated or imported.
#pragma once

#include "schedules/analysis.h"
#include "schedules/ir.h"

namespace paci {

// Checks, in order: structure (one F and one B, or one I and one W, per (stage,
// micro-batch); stages on their devices; ids in range), the dependency graph is acyclic
// (Boost.Graph topological sort), the device programs run in order without deadlock,
// every OPT applies exactly one global batch, and the schedule's declared bounds hold.
// Returns the static analysis; throws ScheduleError (one-line what(), excerpt in context()).
Analysis validate(const Schedule& s);

}  // namespace paci
