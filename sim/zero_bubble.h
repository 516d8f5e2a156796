// zb-1p and zb-2p (Zero Bubble, Qi et al., arXiv 2401.10241): automatic split-backward
// schedules built from a cost model under an activation-memory limit of 1x and 2x 1F1B's.
//
// 1F1B's activation peak is stage 0's min(P, M) micro-batches; the limit is k times that in
// bytes, L_k = k * max_s min(P-s, M) * activation_bytes(s), and stage s may keep
// floor(L_k / activation_bytes(s)) micro-batches between F and W (at most M). The order
// comes from the greedy list scheduler (schedules/greedy.h) run with the model's F, I, W and
// transfer time: it prefers I (critical path), then F while a slot is free, then W to fill
// gaps. Each of the N steps repeats that order and ends with the stage's OPT (a flush).
#pragma once

#include <string_view>

#include "schedules/ir.h"
#include "sim/cost.h"

namespace paci {

// True for the schedules this file builds (they need a cost model).
bool is_zero_bubble_auto(std::string_view name);

// name: "zb-1p" or "zb-2p". memory_limit: bytes a device may hold (0 = the cost model's
// device_memory, 0 there = no limit). Throws CostError when the schedule's memory does not
// fit under the limit, naming the stage, what it needs and the limit.
Schedule make_zero_bubble(std::string_view name, int P, int M, int N, const CostModel& c,
                          double memory_limit = 0);

}  // namespace paci
