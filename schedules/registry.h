// The schedule library: every schedule paci can generate, by name.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "schedules/gen/generators.h"
#include "schedules/ir.h"

namespace paci {

struct ScheduleParams {
  int stages = 0;          // P: devices (pipeline ranks)
  int microbatches = 0;    // M per optimizer step
  int steps = 1;           // N
  std::optional<int> virtual_stages;  // v (interleaved-1f1b, interleaved-zb, looped-bfs); default 2
  std::optional<int> accum;           // a (paci, paci-v); default M
};

// A parameter a generator cannot accept. flag() names the command-line flag, what() is one
// line saying what is wrong and what is allowed.
class ParamError : public std::invalid_argument {
 public:
  ParamError(std::string flag, const std::string& message)
      : std::invalid_argument(message), flag_(std::move(flag)) {}
  const std::string& flag() const { return flag_; }

 private:
  std::string flag_;
};

struct ScheduleInfo {
  std::string name;
  std::string summary;       // one line for `paci schedules`
  bool uses_virtual = false;
  bool uses_accum = false;
  bool needs_cost_model = false;  // built by the simulator from a cost model (zb-1p, zb-2p)
};

const std::vector<ScheduleInfo>& schedule_catalog();
const ScheduleInfo* find_schedule(std::string_view name);

// Generates a schedule. Throws ParamError for unknown names and invalid parameters.
// Schedules that need a cost model are not built here (see sim/).
Schedule make_schedule(std::string_view name, const ScheduleParams& params);
// paci-v's order built for these per-stage costs (schedules/gen/paci_v.cc) instead of equal
// stages with B = 2F; the same parameter checks as make_schedule.
Schedule make_paci_v(const ScheduleParams& params, const PaciVCosts& costs);

}  // namespace paci
