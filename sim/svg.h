// SVG Gantt timeline of one or more traces: a row per device, a bar per action coloured by
// kind (F blue, B green, I teal, W yellow), a red tick at each optimizer step, and a time
// axis. Several traces (paci sim --compare) share one time scale, so shorter means faster.
#pragma once

#include <string>
#include <vector>

#include "schedules/trace/trace.h"

namespace paci {

struct SvgOptions {
  double width = 1400;        // pixels of the time axis
  double row_height = 16;
  // Draw at most this many actions in all: past it, only the first part of the run (a time
  // window that holds that many) is drawn and the heading says so.
  size_t max_actions = 60000;
};

struct SvgPanel {
  const Trace* trace = nullptr;
  std::string title;  // e.g. "paci  makespan 1.23 s  bubble 2.1%"
};

std::string timeline_svg(const std::vector<SvgPanel>& panels, const SvgOptions& o = {});

}  // namespace paci
