// `paci plan`: which schedule, how many micro-batches, what partition, and will it fit? A
// search over schedules x pipeline depth P x micro-batch size (so M = a = global batch /
// micro-batch size micro-batches per update) x virtual stages v (interleaved-1f1b) x backward
// semantics (current, forward, recompute where the schedule allows them), each with the
// min-max partition of its cost model, simulated, with the Pareto front of step time against
// peak memory per device.
//
// Bounds before simulating, both computed from the IR alone:
//  - peak memory: a device runs its actions one at a time in program order, so its
//    activation memory follows its program exactly (F takes a micro-batch's activations
//    when it starts; B, or I then W, give them back when they end; recompute keeps the
//    stage input and holds the whole activations during B) and the simulator's peak is this
//    replay's peak. A candidate above the memory limit is skipped: exact, not an estimate.
//  - step time: between two optimizer steps of a device's first stage that stage runs the a
//    backwards (B, or W) of one global batch and the OPT, so every device's steady step time
//    is at least a x (B or W) + OPT of its first stage (plus a x (F, and I) where the stage
//    has no drift and no delay: then the batch's forwards run between the same updates); the
//    bound is the least over devices.
//    A candidate whose bound is slower than, and whose exact memory is no lower than, a
//    simulated candidate's (or no slower and higher) is strictly dominated and is not
//    simulated: it cannot be on the front.
// Candidates are simulated in order of their step-time bound, so fast ones come first and
// prune the rest. PlanResult says for every candidate what was done with it and why.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "exec/model/partition.h"
#include "schedules/ir.h"
#include "sim/cost.h"

namespace paci {

std::vector<std::string> default_plan_schedules();

struct Analysis;
// Exact peak memory per device (max over devices) from program order, as the simulator
// counts it (see sim/simulator.h): static memory plus the activations of the device's
// program replayed in order (the bound above). -1 when the schedule has actions this replay
// does not model (FB).
double program_order_peak(const Schedule& s, const Analysis& an, const CostModel& c);

struct PlanSpace {
  // Generator names; default: every schedule of the library with a global batch per update
  // (all but pipedream, which updates per micro-batch), default_plan_schedules().
  std::vector<std::string> schedules = default_plan_schedules();
  std::vector<int> stages = {8};        // P values
  int global_batch = 0;                 // sequences per optimizer step (> 0)
  std::vector<int> micro_batch_sizes;   // sequences per micro-batch; empty: every divisor of global_batch
  std::vector<int> virtual_stages = {2, 4};  // v for the schedules that take it (interleaved-1f1b, ...)
  // Backward semantics tried on every schedule whose policy is current (forward only where
  // it differs from current: asynchronous schedules; recompute only with a whole B).
  std::vector<WeightPolicy> backward = {WeightPolicy::kCurrent, WeightPolicy::kForward, WeightPolicy::kRecompute};
  double memory_limit = 0;  // bytes per device; 0: none
  int max_drift = -1;       // for the recommendation: at most this drift (-1: any)
  int min_steps = 4;        // steps simulated (more when the steady window needs them)
  bool prune = true;        // false: simulate every buildable candidate (the exhaustive search)
};

// The cost model of a candidate with `stages` stages (P x v) and micro-batches of
// `micro_batch` sequences, its partition chosen under `limits` (memory per stage, the
// schedule's in-flight micro-batches per stage); `layout` the partition as --partition text.
struct PlanCost {
  CostModel cost;
  std::string layout;
};
using PlanCostFn = std::function<PlanCost(int stages, int micro_batch, const PartitionLimits& limits)>;

enum class PlanStatus {
  kFront,        // simulated, fits, on the Pareto front
  kSimulated,    // simulated, fits, dominated
  kOverMemory,   // exact peak memory above the limit: not simulated
  kDominated,    // bounds strictly dominated by a simulated candidate: not simulated
  kInvalid,      // the schedule or its cost model cannot be built (note says why)
};
const char* plan_status_name(PlanStatus s);

struct PlanCandidate {
  std::string schedule;
  int P = 0, v = 1, micro_batch = 0, microbatches = 0;  // M = a: micro-batches per update
  WeightPolicy backward = WeightPolicy::kCurrent;
  std::string layout;
  PlanStatus status = PlanStatus::kInvalid;
  std::string note;
  int steps = 0;           // simulated
  int max_drift = 0;       // from the IR: max over stages of drift and gradient delay (updates
                           // crossed; `forward` and double buffers show it as delay)
  double memory = 0;       // peak memory per device (max over devices), bytes: the
                           // program-order replay, or the simulated peak under --no-prune
  double memory_bound = 0; // the program-order replay (-1: not modelled, e.g. FB actions)
  double step_bound = 0;   // lower bound of the step time, seconds
  // Simulated (kFront, kSimulated):
  double step_time = 0, samples_per_second = 0, tokens_per_second = 0;
  double bubble = 0, steady_bubble = 0, sim_peak_memory = 0;
  std::string label() const;  // e.g. "paci P=8 b=4 M=32 recompute"
};

struct PlanResult {
  std::vector<PlanCandidate> candidates;  // in search order (by step bound)
  std::vector<int> front;                 // indices, by step time ascending
  int recommended = -1;                   // index, -1 when nothing fits
  std::string reason;
  int simulated = 0, over_memory = 0, dominated = 0, invalid = 0;
  double seconds = 0;
};

inline constexpr size_t kMaxPlanConfigurations = 200000;

// Throws std::invalid_argument for an empty or impossible space (no divisor of the global
// batch among the micro-batch sizes, P < 1, more than kMaxPlanConfigurations
// configurations, ...), naming what is wrong.
PlanResult run_plan(const PlanSpace& space, const PlanCostFn& cost);

}  // namespace paci
