#include "schedules/ir.h"

#include <string>

namespace paci {

std::string_view kind_name(ActionKind k) {
  switch (k) {
    case ActionKind::F: return "F";
    case ActionKind::B: return "B";
    case ActionKind::I: return "I";
    case ActionKind::W: return "W";
    case ActionKind::OPT: return "OPT";
    case ActionKind::FB: return "OVERLAP_F_B";
  }
  return "?";
}

std::string to_string(const Action& a) {
  if (a.kind == ActionKind::FB)
    return "(" + to_string(Fwd(a.stage, a.mb)) + ";" + to_string(Bwd(a.stage_b, a.mb_b)) +
           ")OVERLAP_F_B";
  std::string s = std::to_string(a.stage);
  s += kind_name(a.kind);
  if (a.kind != ActionKind::OPT) s += std::to_string(a.mb);
  return s;
}

std::string_view policy_name(WeightPolicy p) {
  switch (p) {
    case WeightPolicy::kCurrent: return "current";
    case WeightPolicy::kStash: return "stash";
    case WeightPolicy::kDoubleBuffer: return "double-buffer";
    case WeightPolicy::kForward: return "forward";
    case WeightPolicy::kRecompute: return "recompute";
  }
  return "?";
}

std::optional<WeightPolicy> parse_policy(std::string_view name) {
  if (name == "current") return WeightPolicy::kCurrent;
  if (name == "stash") return WeightPolicy::kStash;
  if (name == "double-buffer") return WeightPolicy::kDoubleBuffer;
  if (name == "forward") return WeightPolicy::kForward;
  if (name == "recompute") return WeightPolicy::kRecompute;
  return std::nullopt;
}

size_t Schedule::num_actions() const {
  size_t n = 0;
  for (const auto& p : programs) n += p.size();
  return n;
}

}  // namespace paci
