#include "schedules/analysis.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace paci {

namespace {

// Checks that the accumulation window fits the run; returns the steady-state window [lo, hi)
// of micro-batches, the same for every stage.
std::pair<int, int> steady_window(const Schedule& s) {
  const int S = s.stages();
  const int T = s.spec.total_microbatches();
  if (s.accum < 1 || T % s.accum != 0)
    throw ScheduleError(fmt::format("accumulation window {} must be >= 1 and divide the {} "
                                    "micro-batches of the run", s.accum, T));
  int lo = ((S - 1 + s.accum - 1) / s.accum) * s.accum;
  int hi = lo + ((T - lo) / s.accum) * s.accum;
  if (hi <= lo) lo = 0, hi = T;
  return {lo, hi};
}

// The facts of stage st, from its device's program in order; facts[m] (T entries, default
// values on entry) receives those of micro-batch m.
StageFacts analyze_stage(const Schedule& s, int st, std::pair<int, int> window,
                         MicrobatchFacts* facts) {
  const int T = s.spec.total_microbatches();
  const int d = s.stage_device[st];
  const bool copies_kept = keeps_old_versions(s.policy);
  StageFacts sf;
  sf.inputs_only = recomputes_forward(s.policy);
  int version = 0;                  // OPTs of this stage so far
  int inflight = 0;                 // F done, B/W not done
  std::map<int, int> held;          // versions used by forwards whose backward is pending
  std::vector<int> pending;         // gradients complete since the last OPT
  pending.reserve(s.accum);
  int next_batch_mb = 0;            // first micro-batch of the batch the next OPT consumes
  auto copies = [&] {
    if (!copies_kept) return 1;
    return static_cast<int>(held.size()) + (held.count(version) ? 0 : 1);
  };
  const auto& prog = s.programs[d];
  Action halves[2];  // an FB's
  for (int p = 0; p < static_cast<int>(prog.size()); ++p) {
    // The plain actions at position p: the action, or an FB's two halves.
    const Action* subs = &prog[p];
    int nsub = 1;
    if (subs->kind == ActionKind::FB) nsub = sub_actions(*subs, halves), subs = halves;
    for (int h = 0; h < nsub; ++h) {
      const Action& a = subs[h];
      if (a.stage != st) continue;
      MicrobatchFacts* f = a.mb >= 0 ? &facts[a.mb] : nullptr;
      switch (a.kind) {
        case ActionKind::F: {
          const int used = forward_version(s.policy, version, a.mb, s.accum);
          if (used > version)
            throw ScheduleError(
                fmt::format("device {}, position {}: {} is in global batch {} and must use "
                            "weight version {} (double buffer), but stage {} has made only {} "
                            "updates: more micro-batches per step are needed",
                            d, p, to_string(a), a.mb / s.accum, used, st, version),
                program_excerpt(s, {d, p}));
          f->v_fwd = used;
          ++inflight;
          if (copies_kept) ++held[used];
          sf.inflight_peak = std::max(sf.inflight_peak, inflight);
          sf.weight_copies = std::max(sf.weight_copies, copies());
          break;
        }
        case ActionKind::B:
        case ActionKind::I:
          f->v_bwd = backward_version(s.policy, version, f->v_fwd);
          f->drift = f->v_bwd - f->v_fwd;
          if (copies_kept) {
            auto it = held.find(f->v_fwd);
            if (--it->second == 0) held.erase(it);
          }
          if (a.kind == ActionKind::B) --inflight, pending.push_back(a.mb);
          break;
        case ActionKind::W:
          --inflight;
          pending.push_back(a.mb);
          break;
        case ActionKind::OPT: {
          // Usually in order already (backwards run in micro-batch order).
          if (!std::is_sorted(pending.begin(), pending.end())) std::sort(pending.begin(), pending.end());
          bool exact = static_cast<int>(pending.size()) == s.accum;
          for (int k = 0; exact && k < s.accum; ++k) exact = pending[k] == next_batch_mb + k;
          if (!exact) {
            std::string got;
            for (size_t k = 0; k < pending.size() && k < 8; ++k)
              got += (k ? "," : "") + std::to_string(pending[k]);
            if (pending.size() > 8) got += ",...";
            throw ScheduleError(
                fmt::format("device {}, position {}: {} is update {} of stage {} and must apply "
                            "the gradients of micro-batches {}..{} (global batch {}), but {} "
                            "completed since the previous update: {{{}}}",
                            d, p, to_string(a), version, st, next_batch_mb,
                            next_batch_mb + s.accum - 1, version,
                            pending.empty() ? std::string("none") : std::to_string(pending.size()),
                            got),
                program_excerpt(s, {d, p}));
          }
          for (int m : pending) {
            facts[m].opt = version;
            facts[m].delay = version - facts[m].v_fwd;
          }
          pending.clear();
          next_batch_mb += s.accum;
          ++version;
          sf.weight_copies = std::max(sf.weight_copies, copies());
          break;
        }
        case ActionKind::FB:
          break;  // never a sub-action
      }
    }
  }
  if (!pending.empty())
    throw ScheduleError(fmt::format("stage {}: the gradients of {} micro-batches (from {}) "
                                    "are never applied: the program must end with an OPT",
                                    st, pending.size(), to_string(Bwd(st, pending.front()))),
                        program_excerpt(s, {d, static_cast<int>(prog.size()) - 1}));
  sf.updates = version;
  const auto [lo, hi] = window;
  long drift_sum = 0, delay_sum = 0, steady_sum = 0;
  for (int m = 0; m < T; ++m) {
    sf.max_drift = std::max(sf.max_drift, facts[m].drift);
    sf.max_delay = std::max(sf.max_delay, facts[m].delay);
    drift_sum += facts[m].drift;
    delay_sum += facts[m].delay;
    if (m >= lo && m < hi) steady_sum += facts[m].drift;
  }
  sf.mean_drift = static_cast<double>(drift_sum) / T;
  sf.mean_delay = static_cast<double>(delay_sum) / T;
  sf.steady_mean_drift = static_cast<double>(steady_sum) / (hi - lo);
  return sf;
}

}  // namespace

Analysis analyze(const Schedule& s) { return analyze(s, ActionIndex(s)); }

Analysis analyze(const Schedule& s, const ActionIndex&) {
  const int S = s.stages();
  const int T = s.spec.total_microbatches();
  Analysis out;
  out.stages.resize(S);
  out.mb.assign(S, std::vector<MicrobatchFacts>(T));
  const auto window = steady_window(s);
  for (int st = 0; st < S; ++st) out.stages[st] = analyze_stage(s, st, window, out.mb[st].data());
  // Activation slots per device in program order: +1 at a forward, -1 when its backward
  // (B, or W) completes, in units of one of its stages' activations.
  out.device_inflight_peak.assign(s.devices(), 0);
  for (int d = 0; d < s.devices(); ++d) {
    int level = 0, peak = 0;
    Action sub[2];
    for (const Action& a : s.programs[d]) {
      const int n = sub_actions(a, sub);
      for (int k = 0; k < n; ++k) {
        if (sub[k].kind == ActionKind::F) peak = std::max(peak, ++level);
        if (sub[k].kind == ActionKind::B || sub[k].kind == ActionKind::W) --level;
      }
    }
    out.device_inflight_peak[d] = peak;
  }
  return out;
}

std::vector<StageFacts> analyze_stages(const Schedule& s, const ActionIndex&) {
  const int S = s.stages();
  const int T = s.spec.total_microbatches();
  std::vector<StageFacts> out(S);
  const auto window = steady_window(s);
  std::vector<MicrobatchFacts> facts;  // one stage's at a time
  for (int st = 0; st < S; ++st) {
    facts.assign(T, MicrobatchFacts{});
    out[st] = analyze_stage(s, st, window, facts.data());
  }
  return out;
}

}  // namespace paci
