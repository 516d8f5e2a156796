#include "schedules/trace/metrics.h"

#include <algorithm>
#include <climits>
#include <limits>

#include "schedules/huge_pages.h"

namespace paci {
namespace {

// Each device's actions in the order they ran: by start, then program position (so
// zero-length actions such as a free OPT keep their place).
bool ran_before(const TraceAction& x, const TraceAction& y) {
  if (x.start != y.start) return x.start < y.start;
  return x.pos < y.pos;
}

std::vector<std::vector<const TraceAction*>> by_device(const Trace& t) {
  std::vector<std::vector<const TraceAction*>> out(t.spec.devices);
  for (const auto& a : t.actions) out[a.device].push_back(&a);
  auto before = [](const TraceAction* x, const TraceAction* y) { return ran_before(*x, *y); };
  for (auto& v : out)
    if (!std::is_sorted(v.begin(), v.end(), before)) std::sort(v.begin(), v.end(), before);
  return out;
}

// Each device's samples in time order.
std::vector<std::vector<const MemorySample*>> samples_by_device(const Trace& t) {
  std::vector<std::vector<const MemorySample*>> out(t.spec.devices);
  for (const auto& m : t.memory) out[m.device].push_back(&m);
  auto before = [](const MemorySample* a, const MemorySample* b) { return a->time < b->time; };
  for (auto& v : out)
    if (!std::is_sorted(v.begin(), v.end(), before)) std::stable_sort(v.begin(), v.end(), before);
  return out;
}

// Feeds a stored trace to a builder: in storage order where each device's records are in
// order already (traces are usually written so), else through per-device sorted lists.
std::vector<size_t> actions_per_device(const Trace& t) {
  std::vector<size_t> count(t.spec.devices, 0);
  for (const auto& a : t.actions) ++count[a.device];
  return count;
}

void feed_actions(const Trace& t, MetricsBuilder& b) {
  std::vector<const TraceAction*> last(t.spec.devices, nullptr);
  bool ordered = true;
  for (const auto& a : t.actions) {
    const TraceAction*& prev = last[a.device];
    if (prev && ran_before(a, *prev)) ordered = false;
    prev = &a;
  }
  if (ordered) {
    for (const auto& a : t.actions) b.add(a);
    return;
  }
  for (const auto& list : by_device(t))
    for (const TraceAction* a : list) b.add(*a);
}

void feed_memory(const Trace& t, MetricsBuilder& b) {
  std::vector<const MemorySample*> last(t.spec.devices, nullptr);
  bool ordered = true;
  for (const auto& m : t.memory) {
    const MemorySample*& prev = last[m.device];
    if (prev && m.time < prev->time) ordered = false;
    prev = &m;
  }
  if (ordered) {
    for (const auto& m : t.memory) b.add(m);
    return;
  }
  for (const auto& list : samples_by_device(t))
    for (const MemorySample* m : list) b.add(*m);
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

MetricsBuilder::MetricsBuilder(const Trace& h, const std::vector<size_t>& actions)
    : D_(h.spec.devices),
      S_(h.stages()),
      T_(std::max(0, h.spec.total_microbatches())),
      accum_(h.accum),
      microbatches_(h.spec.microbatches),
      steps_(h.spec.steps),
      samples_per_microbatch_(h.samples_per_microbatch),
      tokens_per_microbatch_(h.tokens_per_microbatch),
      stage_device_(h.stage_device),
      static_memory_(h.static_memory) {
  static_memory_.resize(std::max(0, D_));  // checked (check_trace) where it matters
  start_ = std::numeric_limits<double>::infinity();
  end_ = -start_;
  dev_.resize(D_);
  static_total_.resize(D_);
  size_t total = 0;
  for (int d = 0; d < D_; ++d) {
    dev_[d].peak = static_total_[d] = static_memory_[d].total();
    dev_[d].first = total;
    total += d < static_cast<int>(actions.size()) ? actions[d] : 0;
  }
  reserve_huge(spans_, total);
  populate(spans_, total);
  spans_.resize(total);
  for (int s = S_ - 1; s >= 0; --s)
    if (stage_device_[s] >= 0 && stage_device_[s] < D_) dev_[stage_device_[s]].ref_stage = s;
  updates_.assign(S_, 0);
  reserve_huge(mb_, static_cast<size_t>(S_) * T_);
  populate(mb_, static_cast<size_t>(S_) * T_);
  mb_.resize(static_cast<size_t>(S_) * T_);
  pending_.resize(S_);
}

void MetricsBuilder::applied(int stage, int version) {
  for (int m : pending_[stage]) mb_[slot(stage, m)].applied = version;
  pending_[stage].clear();
}

RecordedVersions MetricsBuilder::versions() const {
  RecordedVersions r;
  r.v_fwd.assign(S_, std::vector<int>(T_, -1));
  r.v_bwd = r.drift = r.delay = r.v_fwd;
  for (int s = 0; s < S_; ++s)
    for (int m = 0; m < T_; ++m) {
      const Versions& v = mb_[slot(s, m)];
      r.v_fwd[s][m] = v.fwd;
      r.v_bwd[s][m] = v.bwd;
      if (v.fwd >= 0 && v.bwd >= 0) r.drift[s][m] = v.bwd - v.fwd;
      if (v.fwd >= 0 && v.applied != INT_MIN) r.delay[s][m] = v.applied - v.fwd;
    }
  return r;
}

TraceMetrics MetricsBuilder::finish() const {
  const int D = D_, S = S_;
  TraceMetrics out;
  out.devices.resize(D);
  if (any_) out.start = start_, out.end = end_;
  out.makespan = out.end - out.start;

  // Busy time, bubbles and the steady window.
  const int a = std::max(1, accum_);
  const int k = (S - 1 + a - 1) / a;
  const double per_step = static_cast<double>(microbatches_) / a;
  int with_window = 0;
  double step_sum = 0, steady_sum = 0;
  for (int d = 0; d < D; ++d) {
    DeviceMetrics& m = out.devices[d];
    const Device& v = dev_[d];
    m.actions = v.actions;
    m.first_start = v.first_start;
    m.busy = v.busy;
    m.last_end = v.last_end;
    out.busy += m.busy;
    m.bubble = out.makespan > 0 ? 1 - m.busy / out.makespan : 0;
    const std::vector<double>& u = v.updates;
    const int K = static_cast<int>(u.size());
    if (K > 2 * k) {
      m.steady = true;
      m.steady_begin = k > 0 ? u[k - 1] : out.start;
      m.steady_end = u[K - k - 1];
      double len = m.steady_end - m.steady_begin, in = 0;
      for (int k = 0; k < v.actions; ++k) {
        const auto& [start, end] = spans_[v.first + k];
        in += std::max(0.0, std::min(end, m.steady_end) - std::max(start, m.steady_begin));
      }
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
  out.step_time = with_window > 0 ? step_sum / with_window : out.makespan / std::max(1, steps_);
  if (out.step_time > 0) {
    out.samples_per_second = microbatches_ * samples_per_microbatch_ / out.step_time;
    out.tokens_per_second = microbatches_ * tokens_per_microbatch_ / out.step_time;
  }

  // Peak memory: the static memory from the trace start (or the first sample, if earlier),
  // then the largest total sample.
  for (int d = 0; d < D; ++d) {
    DeviceMetrics& m = out.devices[d];
    const Device& v = dev_[d];
    m.static_memory = static_memory_[d];
    m.peak_memory = v.peak;
    m.peak_time = v.above_static ? v.peak_time
                  : v.sampled    ? std::min(out.start, v.first_sample)
                                 : out.start;
    m.peak_dynamic = m.peak_memory - m.static_memory.total();
    if (d == 0 || m.peak_memory > out.peak_memory) out.peak_memory = m.peak_memory, out.peak_device = d;
  }

  // Drift and delay from the recorded versions.
  out.stages.resize(S);
  for (int s = 0; s < S; ++s) {
    StageDriftStats& st = out.stages[s];
    st.updates = updates_[s];
    long drift = 0, delay = 0;
    int n_delay = 0;
    for (int m = 0; m < T_; ++m) {
      const Versions& v = mb_[slot(s, m)];
      const int dr = v.fwd >= 0 && v.bwd >= 0 ? v.bwd - v.fwd : -1;
      const int de = v.fwd >= 0 && v.applied != INT_MIN ? v.applied - v.fwd : -1;
      if (dr >= 0) {
        ++st.microbatches;
        drift += dr;
        st.max_drift = std::max(st.max_drift, dr);
      }
      if (de >= 0) {
        ++n_delay;
        delay += de;
        st.max_delay = std::max(st.max_delay, de);
      }
    }
    if (st.microbatches) st.mean_drift = static_cast<double>(drift) / st.microbatches;
    if (n_delay) st.mean_delay = static_cast<double>(delay) / n_delay;
  }
  return out;
}

TraceMetrics compute_metrics(const Trace& t) {
  check_trace(t);
  MetricsBuilder b(t, actions_per_device(t));
  feed_actions(t, b);
  feed_memory(t, b);
  return b.finish();
}

RecordedVersions recorded_versions(const Trace& t) {
  MetricsBuilder b(t, actions_per_device(t));
  feed_actions(t, b);
  return b.versions();
}

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

}  // namespace paci
