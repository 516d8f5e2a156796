// Transports without message tags (NCCL point-to-point) match the k-th send from rank A to
// rank B with the k-th receive on B from A. A schedule can use them only if, for every pair
// of devices, the order in which one sends equals the order in which the other receives.
#pragma once

#include <optional>
#include <string>

#include "schedules/ir.h"

namespace paci {

// nullopt if every device pair agrees on the message order; otherwise one line naming the
// pair and the first messages that disagree.
std::optional<std::string> p2p_order_mismatch(const Schedule& s);

}  // namespace paci
