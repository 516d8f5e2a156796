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

// Memory of one device as a step function: (time, total bytes) at every change, starting
// with the static memory at the trace start.
std::vector<std::pair<double, double>> memory_timeline(const Trace& t, int device);

// Per (stage, micro-batch) drift and delay from the versions the trace recorded; -1 where
// the trace lacks the actions. Indexed [stage][micro-batch].
struct RecordedVersions {
  std::vector<std::vector<int>> v_fwd, v_bwd, drift, delay;
};
RecordedVersions recorded_versions(const Trace& t);

}  // namespace paci
