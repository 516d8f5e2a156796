#include "exec/runtime/measured_trace.h"

#include <algorithm>
#include <map>

namespace paci {

Trace measured_trace(const Schedule& schedule, const std::vector<ActionRecord>& actions,
                     const std::vector<StageMemory>& memory, int micro_batch, int seq_len,
                     const std::string& executor) {
  Trace t;
  t.schedule = schedule.name;
  t.origin = "measured";
  t.cost = executor;
  t.spec = schedule.spec;
  t.accum = schedule.accum;
  t.policy = schedule.policy;
  t.stage_device = schedule.stage_device;
  t.samples_per_microbatch = micro_batch;
  t.tokens_per_microbatch = static_cast<double>(micro_batch) * seq_len;
  t.memory_unit = "B";
  const int D = schedule.devices();
  t.static_memory.resize(D);
  for (int s = 0; s < schedule.stages() && s < static_cast<int>(memory.size()); ++s) {
    StaticMemory& m = t.static_memory[schedule.stage_device[s]];
    m.weights += memory[s].param_bytes;
    m.grads += memory[s].grad_bytes;
    m.optimizer += memory[s].optimizer_bytes;
    m.workspace += memory[s].workspace_bytes;
    m.stashed += static_cast<double>(memory[s].peak_stashed_copies) * memory[s].param_bytes;
  }
  std::vector<int> pos(D, 0);
  std::vector<std::vector<std::pair<double, double>>> events(D);
  for (const ActionRecord& r : actions) {
    TraceAction a;
    a.action = r.action;
    a.device = r.device;
    a.pos = pos[r.device]++;
    a.start = r.start;
    a.end = r.end;
    // The runtime records the new version for OPT; the trace wants the one it replaced.
    a.version = r.action.kind == ActionKind::OPT ? r.version - 1 : r.version;
    t.actions.push_back(a);
    if (r.action.stage >= static_cast<int>(memory.size())) continue;
    const double slot = static_cast<double>(memory[r.action.stage].slot_bytes);
    if (r.action.kind == ActionKind::F) events[r.device].emplace_back(r.start, slot);
    if (r.action.kind == ActionKind::B || r.action.kind == ActionKind::W)
      events[r.device].emplace_back(r.end, -slot);
  }
  for (int d = 0; d < D; ++d) {
    std::stable_sort(events[d].begin(), events[d].end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    double level = 0;
    for (const auto& [time, delta] : events[d]) {
      level += delta;
      t.memory.push_back({time, d, level});
    }
  }
  return t;
}

}  // namespace paci
