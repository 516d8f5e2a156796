#include "schedules/trace/metrics.h"

#include <algorithm>
#include <limits>

namespace paci {
namespace {

// Each device's actions in the order they ran: by start, then program position (so
// zero-length actions such as a free OPT keep their place).
std::vector<std::vector<const TraceAction*>> by_device(const Trace& t) {
  std::vector<std::vector<const TraceAction*>> out(t.spec.devices);
  for (const auto& a : t.actions) out[a.device].push_back(&a);
  auto before = [](const TraceAction* x, const TraceAction* y) {
    if (x->start != y->start) return x->start < y->start;
    return x->pos < y->pos;
  };
  for (auto& v : out)  // traces are usually written in order already
    if (!std::is_sorted(v.begin(), v.end(), before)) std::sort(v.begin(), v.end(), before);
  return out;
}

using DeviceLists = std::vector<std::vector<const TraceAction*>>;

RecordedVersions versions_of(const Trace& t, const DeviceLists& dev);

// Each device's samples in time order.
std::vector<std::vector<const MemorySample*>> samples_by_device(const Trace& t) {
  std::vector<std::vector<const MemorySample*>> out(t.spec.devices);
  for (const auto& m : t.memory) out[m.device].push_back(&m);
  auto before = [](const MemorySample* a, const MemorySample* b) { return a->time < b->time; };
  for (auto& v : out)
    if (!std::is_sorted(v.begin(), v.end(), before)) std::stable_sort(v.begin(), v.end(), before);
  return out;
}

std::vector<std::pair<double, double>> timeline_of(const Trace& t, int device,
                                                   const std::vector<const MemorySample*>& mine,
                                                   double start) {
  double base = t.static_memory.at(device).total();
  std::vector<std::pair<double, double>> out;
  out.reserve(mine.size() + 1);
  out.emplace_back(std::min(start, mine.empty() ? start : mine.front()->time), base);
  for (const MemorySample* m : mine) out.emplace_back(m->time, base + m->bytes);
  return out;
}

}  // namespace

RecordedVersions recorded_versions(const Trace& t) { return versions_of(t, by_device(t)); }

namespace {

RecordedVersions versions_of(const Trace& t, const DeviceLists& dev) {
  const int S = t.stages(), T = t.spec.total_microbatches();
  RecordedVersions r;
  r.v_fwd.assign(S, std::vector<int>(T, -1));
  r.v_bwd = r.drift = r.delay = r.v_fwd;
  for (const auto& list : dev)
    for (const TraceAction* a : list) {
      const Action& x = a->action;
      if (x.mb < 0 || x.mb >= T) continue;
      if (x.kind == ActionKind::F) r.v_fwd[x.stage][x.mb] = a->version;
      if (x.kind == ActionKind::B || x.kind == ActionKind::I) r.v_bwd[x.stage][x.mb] = a->version;
      if (x.kind == ActionKind::FB) {
        r.v_fwd[x.stage][x.mb] = a->version;
        if (x.mb_b >= 0 && x.mb_b < T) r.v_bwd[x.stage_b][x.mb_b] = a->version_b;
      }
    }
  for (int s = 0; s < S; ++s)
    for (int m = 0; m < T; ++m)
      if (r.v_fwd[s][m] >= 0 && r.v_bwd[s][m] >= 0) r.drift[s][m] = r.v_bwd[s][m] - r.v_fwd[s][m];
  // Delay: the first OPT of the stage after the gradient is complete applies it.
  std::vector<std::vector<int>> pending(S);
  for (const auto& list : dev)
    for (const TraceAction* a : list) {
      const Action& x = a->action;
      if (x.kind == ActionKind::B || x.kind == ActionKind::W) {
        if (x.mb >= 0 && x.mb < T) pending[x.stage].push_back(x.mb);
      } else if (x.kind == ActionKind::FB) {
        if (x.mb_b >= 0 && x.mb_b < T) pending[x.stage_b].push_back(x.mb_b);
      } else if (x.kind == ActionKind::OPT) {
        for (int m : pending[x.stage])
          if (r.v_fwd[x.stage][m] >= 0) r.delay[x.stage][m] = a->version - r.v_fwd[x.stage][m];
        pending[x.stage].clear();
      }
    }
  return r;
}

}  // namespace

std::vector<std::pair<double, double>> memory_timeline(const Trace& t, int device) {
  double start = std::numeric_limits<double>::infinity();
  for (const auto& a : t.actions) start = std::min(start, a.start);
  if (t.actions.empty()) start = 0;
  std::vector<const MemorySample*> mine;
  for (const auto& m : t.memory)
    if (m.device == device) mine.push_back(&m);
  std::stable_sort(mine.begin(), mine.end(),
                   [](const MemorySample* a, const MemorySample* b) { return a->time < b->time; });
  return timeline_of(t, device, mine, start);
}

TraceMetrics compute_metrics(const Trace& t) {
  check_trace(t);
  const int D = t.spec.devices, S = t.stages();
  TraceMetrics out;
  out.devices.resize(D);
  auto dev = by_device(t);
  if (!t.actions.empty()) {
    out.start = std::numeric_limits<double>::infinity();
    out.end = -out.start;
    for (const auto& a : t.actions) {
      out.start = std::min(out.start, a.start);
      out.end = std::max(out.end, a.end);
    }
  }
  out.makespan = out.end - out.start;

  // Busy time, bubbles and the steady window.
  const int a = std::max(1, t.accum);
  const int k = (S - 1 + a - 1) / a;
  const double per_step = static_cast<double>(t.spec.microbatches) / a;
  int with_window = 0;
  double step_sum = 0, steady_sum = 0;
  for (int d = 0; d < D; ++d) {
    DeviceMetrics& m = out.devices[d];
    const auto& list = dev[d];
    m.actions = static_cast<int>(list.size());
    if (!list.empty()) m.first_start = list.front()->start;
    for (const TraceAction* x : list) {
      m.busy += x->end - x->start;
      m.last_end = std::max(m.last_end, x->end);
    }
    out.busy += m.busy;
    m.bubble = out.makespan > 0 ? 1 - m.busy / out.makespan : 0;
    int ref_stage = -1;
    for (int s = 0; s < S && ref_stage < 0; ++s)
      if (t.stage_device[s] == d) ref_stage = s;
    std::vector<double> u;
    for (const TraceAction* x : list)
      if (x->action.kind == ActionKind::OPT && x->action.stage == ref_stage) u.push_back(x->end);
    const int K = static_cast<int>(u.size());
    if (K > 2 * k) {
      m.steady = true;
      m.steady_begin = k > 0 ? u[k - 1] : out.start;
      m.steady_end = u[K - k - 1];
      double len = m.steady_end - m.steady_begin, in = 0;
      for (const TraceAction* x : list)
        in += std::max(0.0, std::min(x->end, m.steady_end) - std::max(x->start, m.steady_begin));
      m.steady_bubble = len > 0 ? 1 - in / len : 0;
      m.step_time = len / (K - 2 * k) * per_step;
      ++with_window;
      step_sum += m.step_time;
    } else {
      m.steady_bubble = m.bubble;
    }
    steady_sum += m.steady_bubble;
    out.bubble += m.bubble / D;
  }
  out.steady = with_window == D;
  out.steady_bubble = steady_sum / D;
  out.step_time = with_window > 0 ? step_sum / with_window : out.makespan / std::max(1, t.spec.steps);
  if (out.step_time > 0) {
    out.samples_per_second = t.spec.microbatches * t.samples_per_microbatch / out.step_time;
    out.tokens_per_second = t.spec.microbatches * t.tokens_per_microbatch / out.step_time;
  }

  // Peak memory.
  auto samples = samples_by_device(t);
  for (int d = 0; d < D; ++d) {
    DeviceMetrics& m = out.devices[d];
    m.static_memory = t.static_memory[d];
    auto tl = timeline_of(t, d, samples[d], out.start);
    m.peak_memory = tl.front().second;
    m.peak_time = tl.front().first;
    for (const auto& [time, bytes] : tl)
      if (bytes > m.peak_memory) m.peak_memory = bytes, m.peak_time = time;
    m.peak_dynamic = m.peak_memory - m.static_memory.total();
    if (d == 0 || m.peak_memory > out.peak_memory) out.peak_memory = m.peak_memory, out.peak_device = d;
  }

  // Drift and delay from the recorded versions.
  RecordedVersions rv = versions_of(t, dev);
  out.stages.resize(S);
  for (const auto& x : t.actions)
    if (x.action.kind == ActionKind::OPT) ++out.stages[x.action.stage].updates;
  for (int s = 0; s < S; ++s) {
    StageDriftStats& st = out.stages[s];
    long drift = 0, delay = 0;
    int n_delay = 0;
    for (size_t m = 0; m < rv.drift[s].size(); ++m) {
      if (rv.drift[s][m] >= 0) {
        ++st.microbatches;
        drift += rv.drift[s][m];
        st.max_drift = std::max(st.max_drift, rv.drift[s][m]);
      }
      if (rv.delay[s][m] >= 0) {
        ++n_delay;
        delay += rv.delay[s][m];
        st.max_delay = std::max(st.max_delay, rv.delay[s][m]);
      }
    }
    if (st.microbatches) st.mean_drift = static_cast<double>(drift) / st.microbatches;
    if (n_delay) st.mean_delay = static_cast<double>(delay) / n_delay;
  }
  return out;
}

}  // namespace paci
