#include "schedules/trace/trace.h"

#include <stdexcept>

#include <fmt/format.h>

namespace paci {

void check_trace(const Trace& t) {
  const int D = t.spec.devices, S = t.stages();
  if (D < 1) throw std::invalid_argument(fmt::format("trace: {} devices (need >= 1)", D));
  if (S != t.spec.stages())
    throw std::invalid_argument(fmt::format("trace: stage_device has {} entries, spec says {} stages",
                                            S, t.spec.stages()));
  if (static_cast<int>(t.static_memory.size()) != D)
    throw std::invalid_argument(fmt::format("trace: static_memory has {} entries for {} devices",
                                            t.static_memory.size(), D));
  for (size_t k = 0; k < t.actions.size(); ++k) {
    const TraceAction& a = t.actions[k];
    if (a.device < 0 || a.device >= D || a.action.stage < 0 || a.action.stage >= S ||
        t.stage_device[a.action.stage] != a.device ||
        (a.action.kind == ActionKind::FB &&
         (a.action.stage_b < 0 || a.action.stage_b >= S || t.stage_device[a.action.stage_b] != a.device)))
      throw std::invalid_argument(fmt::format("trace: action {} ({}) on device {}: stage or device "
                                              "out of range or not where stage_device puts it",
                                              k, to_string(a.action), a.device));
    if (!(a.end >= a.start))
      throw std::invalid_argument(fmt::format("trace: action {} ({}) ends at {} before it starts at {}",
                                              k, to_string(a.action), a.end, a.start));
  }
  const auto n = static_cast<int64_t>(t.actions.size());
  for (size_t k = 0; k < t.transfers.size(); ++k) {
    const TraceTransfer& x = t.transfers[k];
    if (x.from < 0 || x.from >= n || x.to < 0 || x.to >= n)
      throw std::invalid_argument(fmt::format("trace: transfer {} is between actions {} and {}, but the "
                                              "trace has {} actions",
                                              k, x.from, x.to, n));
    if (x.src < 0 || x.src >= D || x.dst < 0 || x.dst >= D || !(x.end >= x.start))
      throw std::invalid_argument(fmt::format("trace: transfer {} ({} -> {}) has bad devices or times",
                                              k, to_string(t.actions[x.from].action),
                                              to_string(t.actions[x.to].action)));
  }
  for (size_t k = 0; k < t.memory.size(); ++k)
    if (t.memory[k].device < 0 || t.memory[k].device >= D)
      throw std::invalid_argument(fmt::format("trace: memory sample {} names device {}", k,
                                              t.memory[k].device));
}

}  // namespace paci
