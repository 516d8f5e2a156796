// Metrics of a trace: the one place each metric is computed, for simulated and measured
// traces alike.
//
// Definitions (time in seconds):
//  span      = last action end - first action start over all devices (the makespan).
//  busy(d)   = sum of the durations of device d's actions (compute only; transfers run on
//              links and overlap compute).
//  bubble(d) = 1 - busy(d) / span: the idle share of device d over the WHOLE makespan, not
//              over the device's own first-start..last-end window, so warm-up and cool-down
//              count as bubble on every device. The overall bubble is the mean over devices,
//              = total idle / (devices x span). With uniform stage costs and no communication,
//              1F1B and GPipe give (P-1)/(M+P-1) on every device.
//  steady state of device d: the window between two of its optimizer steps. Take the OPTs
//              of the device's lowest stage, u_1..u_K their end times, and k = ceil((S-1)/a)
//              (S stages, a micro-batches per update): the first k updates contain
//              micro-batches that entered while the pipeline filled and the last k those that
//              left while it drained, so the window is [u_k, u_(K-k)]. It exists when
//              K > 2k (enough steps); otherwise the steady values equal the overall ones and
//              `steady` is false. steady_bubble(d) = 1 - busy in window / window length.
//  step time = window length / updates in it x (M / a): seconds per M micro-batches, the
//              mean over devices with a window (else span / N).
//  throughput = M x samples_per_microbatch / step time (and tokens likewise).
//  memory(d, t) = static_memory(d).total() + the device's latest MemorySample at t; the
//              peak is its maximum over time, with the breakdown at that instant.
//  drift(s, m) = version of the backward (B or I) of (s, m) - version of its forward;
//  delay(s, m) = index of the OPT of s that applies m's gradient - version of its forward.
//              The gradient of m is complete at its B, or at its W; the OPT of s that
//              applies it is the first one after that in the device's order.
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <utility>
#include <vector>

#include "schedules/trace/trace.h"

namespace paci {

struct DeviceMetrics {
  double busy = 0;
  double first_start = 0, last_end = 0;
  double bubble = 0;
  bool steady = false;
  double steady_begin = 0, steady_end = 0;
  double steady_bubble = 0;
  double step_time = 0;                  // from this device's window (0 without one)
  double peak_memory = 0, peak_time = 0;
  StaticMemory static_memory;            // part of the peak that is constant
  double peak_dynamic = 0;               // activations at the peak instant
  int actions = 0;
};

struct StageDriftStats {
  int updates = 0;
  int max_drift = 0;
  double mean_drift = 0;
  int max_delay = 0;
  double mean_delay = 0;
  int microbatches = 0;  // with a recorded forward and backward
};

struct TraceMetrics {
  double start = 0, end = 0, makespan = 0;
  double busy = 0;           // over all devices
  double bubble = 0;         // mean of device bubbles
  bool steady = false;       // every device has a steady window
  double steady_bubble = 0;  // mean over devices
  double step_time = 0;      // seconds per M micro-batches
  double samples_per_second = 0, tokens_per_second = 0;
  double peak_memory = 0;    // max over devices
  int peak_device = 0;
  std::vector<DeviceMetrics> devices;
  std::vector<StageDriftStats> stages;
};

TraceMetrics compute_metrics(const Trace& t);

// Per (stage, micro-batch) versions, drift and delay as the trace recorded them; -1 where
// the trace lacks the actions. Indexed [stage][micro-batch]. See recorded_versions().
struct RecordedVersions {
  std::vector<std::vector<int>> v_fwd, v_bwd, drift, delay;
};

// compute_metrics() one record at a time, for a producer that need not keep the records
// (the simulator). Feed each device's actions in the order they ran (by start, then pos)
// and its memory samples in time order (a sample at the same time as another after it, as
// the trace would list them); devices may interleave. finish() then gives exactly what
// compute_metrics() gives for the trace of those records. It keeps 16 bytes per action
// (the steady-state window is known only at the end: span() gives them back) and 12 per
// (stage, micro-batch).
class MetricsBuilder {
 public:
  // The trace's header (spec, accum, stage_device, static_memory, samples and tokens per
  // micro-batch); its records are not read. actions[d]: how many actions device d will be
  // fed, at most. Records must name devices and stages in range.
  MetricsBuilder(const Trace& header, const std::vector<size_t>& actions);
  inline void add(const TraceAction& a);
  inline void add(const MemorySample& m);
  TraceMetrics finish() const;
  RecordedVersions versions() const;
  // (start, end) of an action. Left uninitialised until the action is fed: every span is
  // written once, so the buffer (16 bytes an action) is not zeroed first.
  struct Span {
    double start, end;
    Span() {}  // NOLINT: no initialisation, on purpose
    Span(double s, double e) : start(s), end(e) {}
  };
  // The k-th action fed for the device (k < the actions fed).
  const Span& span(int device, size_t k) const { return spans_[dev_[device].first + k]; }

 private:
  struct Device {
    size_t first = 0;                              // its actions' spans: spans_[first...]
    int actions = 0;
    double busy = 0, first_start = 0, last_end = 0;
    int ref_stage = -1;                            // its lowest stage: whose OPTs mark steps
    std::vector<double> updates;                   // end times of ref_stage's OPTs
    // Memory: the largest total sample, and when; the first sample's time.
    bool sampled = false, above_static = false;
    double first_sample = 0, peak = 0, peak_time = 0;
  };
  size_t slot(int stage, int mb) const { return static_cast<size_t>(stage) * T_ + mb; }
  bool in_range(int mb) const { return mb >= 0 && mb < T_; }
  void applied(int stage, int version);  // an OPT of the stage applies its pending gradients

  int D_ = 0, S_ = 0, T_ = 0, accum_ = 1, microbatches_ = 0, steps_ = 0;
  double samples_per_microbatch_ = 1, tokens_per_microbatch_ = 0;
  std::vector<int> stage_device_;
  std::vector<StaticMemory> static_memory_;
  std::vector<double> static_total_;  // static_memory_[d].total()
  bool any_ = false;
  double start_ = 0, end_ = 0;        // +inf, -inf before the first action
  std::vector<Device> dev_;
  std::vector<Span> spans_;                      // of each action, device by device
  std::vector<int> updates_;                     // OPTs per stage
  struct Versions {
    int fwd = -1, bwd = -1;  // recorded by its forward and its backward (B or I)
    int applied = INT_MIN;   // by the OPT that applied its gradient (last one, if several)
  };
  std::vector<Versions> mb_;                     // [stage * T + mb]
  std::vector<std::vector<int>> pending_;        // per stage: gradients since its last OPT
};

// Called once per record by a producer: inline.
void MetricsBuilder::add(const TraceAction& a) {
  any_ = true;
  start_ = std::min(start_, a.start);
  end_ = std::max(end_, a.end);
  Device& v = dev_[a.device];
  if (v.actions++ == 0) v.first_start = a.start;
  v.busy += a.end - a.start;
  v.last_end = std::max(v.last_end, a.end);
  spans_[v.first + v.actions - 1] = {a.start, a.end};
  // The versions used, and for the delay the gradients each OPT applies: those completed (at a
  // B, W, or an FB's backward half) since the stage's previous OPT.
  const Action& x = a.action;
  switch (x.kind) {
    case ActionKind::F:
      if (in_range(x.mb)) mb_[slot(x.stage, x.mb)].fwd = a.version;
      break;
    case ActionKind::B:
      if (in_range(x.mb)) mb_[slot(x.stage, x.mb)].bwd = a.version, pending_[x.stage].push_back(x.mb);
      break;
    case ActionKind::I:
      if (in_range(x.mb)) mb_[slot(x.stage, x.mb)].bwd = a.version;
      break;
    case ActionKind::W:
      if (in_range(x.mb)) pending_[x.stage].push_back(x.mb);
      break;
    case ActionKind::OPT:
      ++updates_[x.stage];
      if (x.stage == v.ref_stage) v.updates.push_back(a.end);
      applied(x.stage, a.version);
      break;
    case ActionKind::FB:
      if (in_range(x.mb)) {
        mb_[slot(x.stage, x.mb)].fwd = a.version;
        if (in_range(x.mb_b)) mb_[slot(x.stage_b, x.mb_b)].bwd = a.version_b;
      }
      if (in_range(x.mb_b)) pending_[x.stage_b].push_back(x.mb_b);
      break;
  }
}

void MetricsBuilder::add(const MemorySample& m) {
  Device& v = dev_[m.device];
  if (!v.sampled) v.sampled = true, v.first_sample = m.time;
  const double total = static_total_[m.device] + m.bytes;
  if (total > v.peak) v.peak = total, v.peak_time = m.time, v.above_static = true;
}

// Memory of one device as a step function: (time, total bytes) at every change, starting
// with the static memory at the trace start.
std::vector<std::pair<double, double>> memory_timeline(const Trace& t, int device);

// Per (stage, micro-batch) drift and delay from the versions the trace recorded.
RecordedVersions recorded_versions(const Trace& t);

}  // namespace paci
