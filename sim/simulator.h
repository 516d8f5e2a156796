// The discrete-event simulator: interprets a schedule in simulated time with a cost model
// and writes a predicted Trace (schedules/trace), from which metrics.h computes bubbles,
// step time, memory and drift.
//
// Resources: each device has one compute resource, one send link and one receive link. An
// action starts when (1) it is next in its device's program, (2) the device's compute is
// free, and (3) every data dependency (ActionIndex::data_deps) has finished and, if it ran
// on another device, has been transferred. A transfer starts when its producer ends and
// both the sender's send link and the receiver's receive link are free, and holds both for
// latency + bytes / bandwidth; links serve transfers in the order they were requested, and
// compute overlaps transfers. Same-device dependencies need no transfer. Events at equal
// times are all applied before any device picks its next action. With a contention term in
// the cost model (devices sharing hardware), an action takes its cost times (1 +
// contention[kind] x n), n the other devices computing when it starts (devices starting at
// the same instant are dispatched in index order, so a lower one is counted by a higher one).
//
// Memory per device: the constant part (weights, gradients, optimizer state of its stages,
// plus weight_copies - 1 stashed copies from the static analysis under the stash,
// double-buffer and forward policies, as whole fp32-sized copies) and the activations: a
// micro-batch's activation_bytes are taken when its F starts and given back when its B ends
// (or freed_by_i of them when I ends and the rest when W ends). Under recompute a stage
// keeps only its input (the previous stage's send_bytes) from F to B, and a B, which runs
// the forward again (its duration is f + b), holds the whole activation_bytes while it runs.
// With CostModel::preallocated_activations (paci's executor, as calibrated) each stage's
// slots are held for the whole run instead (counted with the workspace). Under the stash and
// double-buffer policies an OPT also takes its stage's `copy` (the version kept).
//
// Weight versions are counted, not assumed: an action records the number of OPTs of its
// stage that finished before it started (the policy picks the forward's version for a
// stashed or double-buffered backward), so the drift measured on the trace is a check of
// the static analysis, which derives it from program order.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "schedules/graph.h"
#include "schedules/ir.h"
#include "schedules/trace/metrics.h"
#include "schedules/trace/trace.h"
#include "sim/cost.h"

namespace paci {

struct Straggler {
  int stage = 0;
  double factor = 1;  // compute durations of the stage are multiplied by this
};

struct SimOptions {
  // Log-normal noise on every compute duration: d * exp(sigma z - sigma^2 / 2), z ~ N(0, 1),
  // so the mean stays d. The noise of an action depends only on (seed, kind, stage,
  // micro-batch or update index), not on the order actions run in.
  double jitter = 0;
  uint64_t seed = 1;
  std::vector<Straggler> stragglers;
  // Also compute the longest path through the dependency DAG with these durations and
  // uncontended transfers (a lower bound of the makespan; equal to it without link
  // contention). Costs a second pass.
  bool dag_bound = false;
  // Keep the whole Trace (every action, transfer and memory sample) in the result. Without
  // it the result's trace holds the header only (schedule, spec, static memory...), while
  // metrics and the critical path are there all the same: what `paci sim`'s summary needs,
  // in a third of the memory.
  bool keep_trace = true;
};

// One action of the critical path as it ran.
struct PathAction {
  Action action;
  int device = 0;
  double start = 0, end = 0;
};

struct SimResult {
  // Actions indexed like the ActionIndex ids of the simulated schedule (for the dynamic
  // policy: of the static paci schedule with the same parameters); pos is the realised order.
  Trace trace;
  // The chain of actions that decided the makespan, first to last: each one started when
  // its predecessor in the chain (previous action on the device, or the producer whose
  // data arrived last) let it. ActionIndex ids, so indices into trace.actions where the
  // trace is kept.
  std::vector<int64_t> critical_path;
  std::vector<PathAction> critical_actions;  // the same chain's actions, with their times
  // compute_metrics(trace) of the whole trace, computed while simulating (so also when the
  // trace is not kept).
  TraceMetrics metrics;
  double dag_bound = 0;                 // when SimOptions::dag_bound
  size_t events = 0;                    // events processed (action ends, wake-ups)
  // The order the dynamic policy realised (simulate_paci_policy); empty for simulate(),
  // which runs the given programs as they are.
  Schedule realised;
};

// Compute seconds of an action with stragglers and jitter. `index` is the micro-batch, or
// for OPT the update index of its stage.
double action_duration(const CostModel& c, const SimOptions& o, const Action& a, int index);

// Simulates a valid schedule (see validate.h). Throws CostError when the cost model does not
// fit, ScheduleError when the programs cannot run to the end.
SimResult simulate(const Schedule& s, const CostModel& c, const SimOptions& o = {});
// The same with the schedule's ActionIndex, where the caller has built it already.
SimResult simulate(const Schedule& s, const ActionIndex& index, const CostModel& c,
                   const SimOptions& o = {});

// The PACI reference runtime as a dynamic policy on P devices (stage s on device s): when a
// device is free it runs a waiting backward first (the oldest), else admits the next forward
// while fewer than P - s micro-batches are in flight on it, and steps its optimizer right
// after every a-th backward. The order it realises is returned as an IR schedule named
// "paci-dynamic" (result.realised, same bounds as paci), so it can be validated, shown,
// exported and replayed by simulate().
SimResult simulate_paci_policy(int P, int M, int N, int a, const CostModel& c,
                               const SimOptions& o = {});

}  // namespace paci
