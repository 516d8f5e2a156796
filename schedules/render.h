// Text views of a schedule for the terminal: a unit-time timeline and the per-stage table.
#pragma once

#include <string>

#include "schedules/analysis.h"
#include "schedules/ir.h"

namespace paci {

// Every F, B, I, W takes one time unit and OPT none; devices run their programs in order
// (the earliest start the dependencies allow). One row per device; a '|' marks an optimizer
// step at that instant. At most max_units time units are drawn.
std::string render_unit_timeline(const Schedule& s, int max_units = 160);

// Per stage: device, in-flight peak, weight copies, updates, max / mean / steady-state mean
// drift, max delay.
std::string render_stage_table(const Schedule& s, const Analysis& a);

}  // namespace paci
