#include "schedules/validate.h"

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

namespace {

void check_spec(const Schedule& s) {
  if (s.spec.devices < 1 || s.spec.virtual_stages < 1 || s.spec.microbatches < 1 ||
      s.spec.steps < 1)
    throw ScheduleError(fmt::format("pipeline spec must be positive: devices {}, virtual {}, "
                                    "micro-batches {}, steps {}",
                                    s.spec.devices, s.spec.virtual_stages, s.spec.microbatches,
                                    s.spec.steps));
}

void check_bounds(const Schedule& s, const std::vector<StageFacts>& stages) {
  for (int st = 0; st < s.stages(); ++st) {
    const StageFacts& f = stages[st];
    check_bound(s, "max drift", s.bounds.max_drift, st, f.max_drift);
    check_bound(s, "max gradient delay", s.bounds.max_delay, st, f.max_delay);
    check_bound(s, "in-flight peak", s.bounds.max_inflight, st, f.inflight_peak);
    check_bound(s, "weight copies", s.bounds.max_weight_copies, st, f.weight_copies);
  }
}

}  // namespace

Analysis validate(const Schedule& s) {
  check_spec(s);
  ActionIndex index(s);
  // Acyclic and deadlock-free in one pass: in-order execution that reaches the end of every
  // program ran each action after its program predecessor and its data dependencies, so its
  // order is a topological order of the dependency DAG (build_graph); a cycle can never
  // finish, and run_in_order throws naming where it bites. (A separate Boost topological sort
  // found nothing more and took a quarter of `paci sim`'s time at a million actions.)
  run_in_order(s, index, [](const Action&) { return 1.0; });
  Analysis an = analyze(s, index);
  check_bounds(s, an.stages);
  return an;
}

std::vector<StageFacts> validate_except_order(const Schedule& s, const ActionIndex& index) {
  check_spec(s);
  std::vector<StageFacts> stages = analyze_stages(s, index);
  check_bounds(s, stages);
  return stages;
}

}  // namespace paci
