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
  // paci-v's periodic order for the stages' own F and B (the library's assumes equal stages
  // with B = 2F), and their activations.
  b["paci-v"] = [=](const std::string&, const ScheduleParams& p) {
    check(p);
    const CostModel c = cost(2 * p.stages);
    PaciVCosts pc;
    for (int s = 0; s < 2 * p.stages; ++s) {
      pc.f.push_back(c.duration(Fwd(s, 0)));
      pc.b.push_back(c.duration(Bwd(s, 0)));
      pc.act.push_back(c.stage(s).activation_bytes);
    }
    return make_paci_v(p, pc);
  };
  b["paci-dynamic"] = [=](const std::string&, const ScheduleParams& p) {
    check(p);
    const int a = p.accum.value_or(p.microbatches);
    return simulate_paci_policy(p.stages, p.microbatches, p.steps, a, cost(p.stages), options).realised;
  };
  return b;
}

}  // namespace paci
