// Cost models: how long each action takes, what a transfer costs and what memory a stage
// holds. The simulator only reads a CostModel; where its numbers come from (flags, a JSON
// file, the analytic GPT model in gpt_cost.h) is up to the caller.
#pragma once

#include <stdexcept>
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "schedules/ir.h"

namespace paci {

// A cost model that cannot be used: what() is one line naming the source, the field and
// what is allowed.
class CostError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// StageCost::fb when a cost model does not give it.
constexpr double kFbNotGiven = -1;
// StageCost::version_bytes when a cost model does not give it: a whole weight copy.
constexpr double kWholeCopy = -1;

struct StageCost {
  // Seconds of compute. b is a whole backward; a split backward runs i (input gradient)
  // then w (weight gradient), so b = i + w.
  double f = 1, b = 2, i = 1, w = 1, opt = 0;
  // An overlapped F&B (ActionKind::FB, DualPipe's "F&B") whose forward is on this stage:
  // seconds for the pair. Not given (kFbNotGiven): f of this stage + b of the backward's
  // stage, i.e. no overlap gain.
  double fb = kFbNotGiven;
  // Activations of one micro-batch, kept from the start of F until its backward ends; a
  // split backward frees `freed_by_i` of them when I ends and the rest when W ends.
  double activation_bytes = 1;
  double freed_by_i = 0;
  // Held for the whole run.
  double weight_bytes = 0, grad_bytes = 0, optimizer_bytes = 0;
  double workspace_bytes = 0;  // scratch and message buffers (what an executor allocates besides)
  // Seconds to copy this stage's weights once: under the stash and double-buffer policies
  // each update makes a copy (a version to keep), which the simulator adds to the OPT.
  double copy = 0;
  // Per micro-batch: F's output sent to the next stage, the input gradient sent back.
  double send_bytes = 0, grad_send_bytes = 0;
  // Bytes of one more weight version held under the `forward` backward semantics (the matmul
  // operands of an older version, which the input gradients use). kWholeCopy: weight_bytes,
  // as fp32 executors keep a whole copy; mixed bf16 with a persistent bf16 copy: that copy
  // (2 bytes per matmul parameter); bf16 autocast: 0, because every micro-batch in flight
  // keeps the casts its forward made under every schedule (they are in activation_bytes).
  double version_bytes = kWholeCopy;
};

// Bytes each weight copy beyond the current one costs under `policy` (analysis.h's
// weight_copies counts them): a whole copy under stash and double buffer, version_bytes
// under forward, nothing under current and recompute (they keep one version).
double extra_copy_bytes(const StageCost& c, WeightPolicy policy);

inline constexpr const char* kContentionKinds[6] = {"F", "B", "I", "W", "OPT", "FB"};

struct CostModel {
  std::string description;           // one line for summaries and traces
  std::vector<StageCost> stages;     // one per stage, or a single one for every stage
  double latency = 0;                // seconds per point-to-point transfer
  double bandwidth = 0;              // bytes per second of a link; 0 = unlimited
  double samples_per_microbatch = 1; // sequences per micro-batch, for throughput
  double tokens_per_microbatch = 0;  // 0 = not a token model
  std::string memory_unit = "B";     // "B", or "slots" when activation_bytes = 1 is a count
  double device_memory = 0;          // bytes per device; 0 = unknown (no OOM check)
  // Contention between devices that share hardware (CPU threads sharing memory bandwidth
  // and the last-level cache; stages sharing one GPU's SMs): an action of kind k (F, B, I,
  // W, OPT, FB) that starts while n other devices compute takes (1 + contention[k] x n)
  // times its cost. All 0 (off) where devices do not share hardware, e.g. the analytic
  // models of separate GPUs; `paci calibrate` measures it on runs of its own.
  std::array<double, 6> contention{};  // indexed by ActionKind; names in kContentionKinds
  // The executor reserves each stage's activation slots up front (its in-flight peak; one
  // under recompute) instead of allocating them as micro-batches come: the simulator then
  // counts them with the workspace, so a device holding several stages is charged the sum of
  // their peaks. Set by calibrations of paci's executor.
  bool preallocated_activations = false;
  bool contended() const {
    for (double x : contention)
      if (x != 0) return true;
    return false;
  }

  const StageCost& stage(int s) const { return stages.size() == 1 ? stages[0] : stages.at(s); }
  double transfer_time(double bytes) const {
    return latency + (bandwidth > 0 ? bytes / bandwidth : 0.0);
  }
  // Compute seconds of an action (no noise, no straggler).
  double duration(const Action& a) const;
  // Throws CostError when the model does not fit a schedule with `stages` stages or has
  // negative or inconsistent numbers.
  void check(int stages) const;
};

// A single-entry (uniform) model describes one device's share of the model. With v model
// chunks per device (interleaved-1f1b) each chunk is 1/v of it: durations and memory are
// divided by v; what crosses a stage boundary (send bytes) is unchanged. Models with one
// entry per stage are returned as they are.
CostModel per_chunk(const CostModel& c, int v);

// --cost "f=1,b=2,w=1,opt=0.1,comm=0.05": the same costs on every stage. Keys: f, b, i, w,
// opt, fb (seconds; fb is an overlapped F&B), comm (latency per transfer, seconds), bw (link bytes/s), msg (bytes per
// transfer), act (activation per micro-batch; default 1, a slot), ifree (share of it freed
// by I), weights, grads, optstate (bytes per stage). A backward given only as b splits into
// i = w = b/2; given b and one of i, w the other is the rest; given i and w, b = i + w.
CostModel parse_uniform_cost(std::string_view spec);

// A per-stage JSON cost file (format "paci-cost", version 1):
//   {"format": "paci-cost", "version": 1,
//    "latency": 1e-5, "bandwidth": 4e11,              // seconds, bytes/s (0 = unlimited)
//    "samples_per_microbatch": 8, "tokens_per_microbatch": 8192, "device_memory": 8e10,
//    "contention": {"F": 0.2, "B": 0.1},              // optional, per kind, 0..100 (see above)
//    "default": {<stage fields>},                     // optional, applies to every stage
//    "stages": [{<stage fields>}, ...]}               // optional if "default" is given
// Stage fields: f, b, i, w, opt, fb, activation_bytes, freed_by_i, weight_bytes, grad_bytes,
// optimizer_bytes, workspace_bytes, copy, send_bytes, grad_send_bytes, version_bytes (numbers >= 0;
// freed_by_i in [0, 1]; version_bytes absent = a whole copy).
CostModel cost_from_json(std::string_view text, const std::string& source);
CostModel load_cost_file(const std::string& path);
std::string cost_to_json(const CostModel& c);

}  // namespace paci
