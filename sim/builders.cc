#include "sim/builders.h"

#include <fmt/format.h>

#include "sim/zero_bubble.h"

namespace paci {

ScheduleBuilders simulator_builders(std::function<CostModel(int stages)> cost, double memory_limit,
                                    const SimOptions& options) {
  ScheduleBuilders b;
  auto check = [](const ScheduleParams& p) {
    if (p.stages < 1 || p.microbatches < 1 || p.steps < 1)
      throw ParamError("--stages", "--stages, --microbatches and --steps must be >= 1");
    // The same limits as the schedule library's.
    if (p.stages > 4096) throw ParamError("--stages", fmt::format("--stages must be <= 4096 (got {})", p.stages));
    if (static_cast<long>(p.microbatches) * p.steps > (1L << 24))
      throw ParamError("--steps", fmt::format("--microbatches x --steps must be <= {} (got {})", 1L << 24,
                                              static_cast<long>(p.microbatches) * p.steps));
  };
  for (const char* name : {"zb-1p", "zb-2p"})
    b[name] = [=](const std::string& n, const ScheduleParams& p) {
      check(p);
      return make_zero_bubble(n, p.stages, p.microbatches, p.steps, cost(p.stages), memory_limit);
    };
  b["paci-dynamic"] = [=](const std::string&, const ScheduleParams& p) {
    check(p);
    const int a = p.accum.value_or(p.microbatches);
    return simulate_paci_policy(p.stages, p.microbatches, p.steps, a, cost(p.stages), options).realised;
  };
  return b;
}

}  // namespace paci
