#include "schedules/source.h"

#include <fmt/format.h>


namespace paci {

std::vector<std::string> schedule_names(const ScheduleBuilders& builders) {
  std::vector<std::string> out;
  for (const ScheduleInfo& i : schedule_catalog())
    if (!i.needs_cost_model || builders.count(i.name)) out.push_back(i.name);
  for (const auto& [name, b] : builders) {
    bool listed = false;
    for (const std::string& n : out) listed = listed || n == name;
    if (!listed) out.push_back(name);
  }
  return out;
}

Schedule with_backward(Schedule s, WeightPolicy b) {
  if (b != WeightPolicy::kCurrent && b != WeightPolicy::kForward && b != WeightPolicy::kRecompute)
    throw ParamError("--backward", fmt::format("'{}' is not a backward semantics (allowed: current, "
                                               "forward, recompute)", policy_name(b)));
  if (s.policy == b) return s;
  if (s.policy != WeightPolicy::kCurrent)
    throw ParamError("--backward", fmt::format("{} uses the weight policy {}; --backward {} applies to "
                                               "schedules whose backward uses the current weights",
                                               s.name, policy_name(s.policy), policy_name(b)));
  if (b == WeightPolicy::kRecompute)
    for (const auto& prog : s.programs)
      for (const Action& a : prog)
        if (a.kind == ActionKind::I || a.kind == ActionKind::W)
          throw ParamError("--backward", fmt::format("{} splits its backward into I and W ({}); recompute "
                                                     "applies to schedules with whole backwards (B)",
                                                     s.name, to_string(a)));
  s.policy = b;
  // Copies of the versions in flight are the point of `forward`: the generator's bound of one
  // copy no longer holds (the analysis counts them).
  if (b == WeightPolicy::kForward) s.bounds.max_weight_copies.clear();
  return s;
}

namespace {
Schedule get_schedule_as_given(const ScheduleRequest& r, const ScheduleBuilders& builders) {
  if (!r.file.empty() && !r.name.empty())
    throw ParamError("--file", fmt::format("give a schedule name (--schedule {}) or a file (--file {}), "
                                           "not both", r.name, r.file));
  if (!r.file.empty()) return load_schedule(r.file, r.hints);
  if (auto b = builders.find(r.name); b != builders.end()) return b->second(r.name, r.params);
  const ScheduleInfo* info = find_schedule(r.name);
  if (info && info->needs_cost_model)
    throw ParamError("--schedule", fmt::format("{} is built from a cost model, which this command "
                                               "does not have", r.name));
  if (!info) {
    std::string allowed;
    for (const std::string& n : schedule_names(builders)) allowed += (allowed.empty() ? "" : ", ") + n;
    throw ParamError("--schedule", fmt::format("unknown schedule '{}' (allowed: {}; or --file "
                                               "FILE.csv|.json)", r.name, allowed));
  }
  return make_schedule(r.name, r.params);
}
}  // namespace

Schedule get_schedule(const ScheduleRequest& r, const ScheduleBuilders& builders) {
  Schedule s = get_schedule_as_given(r, builders);
  if (r.backward) return with_backward(std::move(s), *r.backward);
  return s;  // moved, not copied (a conditional expression would copy it)
}

Schedule get_schedule_for_steps(const ScheduleRequest& r, int steps, const ScheduleBuilders& builders) {
  if (r.file.empty()) {
    ScheduleRequest q = r;
    q.params.steps = steps;
    return get_schedule(q, builders);
  }
  Schedule base = get_schedule(r, builders);
  const int n = base.spec.steps;
  if (steps < 1 || steps % n != 0)
    throw ParamError("--steps", fmt::format("{} holds {} step{} per run of the file; a segment of {} steps "
                                            "(--steps, --save-every) must be a multiple of it",
                                            r.file, n, n == 1 ? "" : "s", steps));
  return steps == n ? base : repeat_schedule(base, steps / n);
}

Schedule repeat_schedule(const Schedule& s, int times) {
  if (times < 1) throw ParamError("--steps", fmt::format("cannot repeat a schedule {} times", times));
  Schedule out = s;
  const int per_copy = s.spec.total_microbatches();
  out.spec.steps = s.spec.steps * times;
  for (size_t d = 0; d < s.programs.size(); ++d) {
    auto& prog = out.programs[d];
    prog.reserve(s.programs[d].size() * times);
    for (int k = 1; k < times; ++k)
      for (Action a : s.programs[d]) {
        if (a.mb >= 0) a.mb += k * per_copy;
        prog.push_back(a);
      }
  }
  return out;
}

}  // namespace paci
