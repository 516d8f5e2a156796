#include "schedules/validate.h"

#include <iterator>

#include <boost/graph/topological_sort.hpp>
#include <fmt/format.h>

#include "schedules/graph.h"

namespace paci {
namespace {

void check_bound(const Schedule& s, const char* what, const std::vector<int>& bound, int stage,
                 int value) {
  if (bound.empty()) return;
  if (static_cast<int>(bound.size()) != s.stages())
    throw ScheduleError(fmt::format("declared {} bound has {} entries for {} stages", what,
                                    bound.size(), s.stages()));
  if (value > bound[stage])
    throw ScheduleError(fmt::format("stage {}: {} {} exceeds the bound {} that schedule '{}' "
                                    "declares",
                                    stage, what, value, bound[stage], s.name));
}

}  // namespace

Analysis validate(const Schedule& s) {
  if (s.spec.devices < 1 || s.spec.virtual_stages < 1 || s.spec.microbatches < 1 ||
      s.spec.steps < 1)
    throw ScheduleError(fmt::format("pipeline spec must be positive: devices {}, virtual {}, "
                                    "micro-batches {}, steps {}",
                                    s.spec.devices, s.spec.virtual_stages, s.spec.microbatches,
                                    s.spec.steps));
  ActionIndex index(s);
  {
    DependencyGraph g = build_graph(s, index);
    std::vector<DependencyGraph::vertex_descriptor> order;
    order.reserve(index.size());
    try {
      boost::topological_sort(g, std::back_inserter(order));
    } catch (const boost::not_a_dag&) {
      // In-order execution pinpoints where the cycle bites and throws; it cannot finish.
      run_in_order(s, index, [](const Action&) { return 1.0; });
      throw ScheduleError("dependency graph has a cycle");
    }
  }
  run_in_order(s, index, [](const Action&) { return 1.0; });
  Analysis an = analyze(s, index);
  for (int st = 0; st < s.stages(); ++st) {
    const StageFacts& f = an.stages[st];
    check_bound(s, "max drift", s.bounds.max_drift, st, f.max_drift);
    check_bound(s, "max gradient delay", s.bounds.max_delay, st, f.max_delay);
    check_bound(s, "in-flight peak", s.bounds.max_inflight, st, f.inflight_peak);
    check_bound(s, "weight copies", s.bounds.max_weight_copies, st, f.weight_copies);
  }
  return an;
}

}  // namespace paci
