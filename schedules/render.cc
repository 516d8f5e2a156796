#include "schedules/render.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "schedules/graph.h"

namespace paci {
namespace {

// A timeline cell: the action string, an FB shortened to its halves joined by '&'.
std::string cell_label(const Action& a) {
  if (a.kind != ActionKind::FB) return to_string(a);
  return to_string(Fwd(a.stage, a.mb)) + "&" + to_string(Bwd(a.stage_b, a.mb_b));
}

}  // namespace

std::string render_unit_timeline(const Schedule& s, int max_units) {
  ActionIndex index(s);
  InOrderTimes t = run_in_order(s, index, [](const Action& a) {
    return a.kind == ActionKind::OPT ? 0.0 : 1.0;
  });
  const int units = static_cast<int>(std::lround(t.makespan));
  const int shown = std::min(units, max_units);
  size_t width = 1;
  for (const auto& prog : s.programs)
    for (const auto& a : prog)
      if (a.kind != ActionKind::OPT) width = std::max(width, cell_label(a).size());
  // cells[d][u]: label of the action in unit u; marks[d][u]: an OPT right before unit u.
  std::string out = fmt::format("unit-time timeline of {} ({} time units; F, B, I, W and an "
                                "overlapped F&B = 1 unit, | = optimizer step, . = idle)\n", s.name, units);
  for (int d = 0; d < s.devices(); ++d) {
    std::vector<std::string> cells(shown + 1);
    std::vector<char> marks(shown + 1, ' ');
    for (int p = 0; p < static_cast<int>(s.programs[d].size()); ++p) {
      int64_t id = index.id({d, p});
      int u = static_cast<int>(std::lround(t.start[id]));
      if (u > shown) continue;
      const Action& a = s.programs[d][p];
      if (a.kind == ActionKind::OPT) marks[u] = '|';
      else if (u < shown) cells[u] = cell_label(a);
    }
    std::string row = fmt::format("device {:>2} ", d);
    for (int u = 0; u <= shown; ++u) {
      row += marks[u];
      if (u < shown) row += fmt::format("{:<{}}", cells[u].empty() ? "." : cells[u], width);
    }
    while (!row.empty() && row.back() == ' ') row.pop_back();
    out += row + "\n";
  }
  if (shown < units)
    out += fmt::format("... {} more time units (raise --width to draw them)\n", units - shown);
  return out;
}

std::string render_stage_table(const Schedule& s, const Analysis& a) {
  std::string out = fmt::format("{:>5} {:>6} {:>9} {:>7} {:>7} {:>9} {:>10} {:>11} {:>9}\n",
                                "stage", "device", "in-flight", "weights", "updates",
                                "max drift", "mean drift", "steady mean", "max delay");
  for (int st = 0; st < s.stages(); ++st) {
    const StageFacts& f = a.stages[st];
    out += fmt::format("{:>5} {:>6} {:>9} {:>7} {:>7} {:>9} {:>10.3f} {:>11.3f} {:>9}\n", st,
                       s.stage_device[st], f.inflight_peak, f.weight_copies, f.updates,
                       f.max_drift, f.mean_drift, f.steady_mean_drift, f.max_delay);
  }
  // Activation memory per device: slots of its stages in flight at once (program order),
  // and the same in device shares (a slot of a device with v stages is 1/v of its share of
  // the model's activations), which compares schedules with different placements.
  out += fmt::format("\n{:>6} {:>6} {:>16} {:>13}\n", "device", "stages", "activation slots",
                     "device shares");
  for (int d = 0; d < s.devices(); ++d) {
    int stages = 0;
    for (int st = 0; st < s.stages(); ++st) stages += s.stage_device[st] == d;
    const int slots = a.device_inflight_peak.empty() ? 0 : a.device_inflight_peak[d];
    out += fmt::format("{:>6} {:>6} {:>16} {:>13.2f}\n", d, stages, slots,
                       stages > 0 ? static_cast<double>(slots) / stages : 0.0);
  }
  return out;
}

}  // namespace paci
