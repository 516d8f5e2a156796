// The schedules that need a cost model, as builders for schedules/source.h: zb-1p and zb-2p
// (sim/zero_bubble.h), paci-dynamic (the order the dynamic PACI policy realises,
// simulate_paci_policy), and paci-v built for the stages' own costs (make_paci_v; without a
// cost model the library's paci-v assumes equal stages with B = 2F). `cost(stages)` gives the
// cost model of a schedule with that many stages: the analytic model, a calibration or a cost
// file, whatever the command has.
#pragma once

#include <functional>

#include "schedules/source.h"
#include "sim/cost.h"
#include "sim/simulator.h"

namespace paci {

// memory_limit: bytes per device for zb-1p / zb-2p (0: the cost model's device memory).
ScheduleBuilders simulator_builders(std::function<CostModel(int stages)> cost, double memory_limit = 0,
                                    const SimOptions& options = {});

}  // namespace paci
