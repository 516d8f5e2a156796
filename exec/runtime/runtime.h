// The executor's runtime: one worker per device interprets that device's IR action list
// with real tensors. F keeps its activations in one of the stage's slots and sends its
// output; B (or I then W) uses the weights the schedule's policy names and sends the input
// gradient; OPT runs AdamW on the stage's own parameters. Every action's start and end,
// the weight version it used, and each stage's memory are recorded.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "exec/model/config.h"
#include "exec/model/backend.h"
#include "exec/model/optimizer.h"
#include "exec/model/partition.h"
#include "exec/model/stage_model.h"
#include "exec/runtime/batch_source.h"
#include "exec/runtime/transport.h"
#include "schedules/ir.h"

namespace paci {

struct RunConfig {
  GptConfig model;
  std::vector<StagePartition> partition;  // one per schedule stage; empty = balanced
  AdamWConfig adamw;
  uint64_t seed = 1337;
  // A worker that waits this long for a message declares the run stuck.
  std::chrono::milliseconds stall_timeout{60000};
  // Copy every stage's weights and optimizer state after each `snapshot_every`-th update
  // (0 = never): consistent states for evaluation and checkpoints of a run whose stages
  // update at different times.
  int snapshot_every = 0;
  // Whether a snapshot also copies the AdamW moments (false: weights only, enough to evaluate).
  bool snapshot_optimizer = true;
  // Updates already applied before this run (resume): versions, LR schedule and data
  // continue from here.
  int first_update = 0;
  // Devices this process runs (one process per rank); empty = all of them, as threads.
  std::vector<int> local_devices;
  // The backend of each stage (e.g. a CUDA backend on its own stream); empty = the CPU
  // backend, shared by all stages.
  std::function<std::unique_ptr<Backend>(int stage)> make_backend;
  // The transport moves the backend's buffers itself (NCCL); otherwise messages of a
  // non-host backend are staged through host memory.
  bool transport_takes_device_buffers = false;
  // Threads only: the in-process transport built from the stages' backends (e.g. CUDA
  // device-to-device copies ordered by events); messages then stay in device memory.
  std::function<std::unique_ptr<Transport>(const std::vector<Backend*>& stage_backends)> make_transport;
};

// One executed action, for the trace: seconds since the run started.
struct ActionRecord {
  int device = 0;
  Action action;
  double start = 0, end = 0;
  int version = -1;  // weights used: F its forward version, B/I the backward's; OPT the new one
};

struct StageMemory {
  size_t param_bytes = 0;       // weights
  size_t grad_bytes = 0;
  size_t optimizer_bytes = 0;   // AdamW m and v
  size_t slot_bytes = 0;        // activations of one micro-batch
  int slots = 0;                // slots allocated (the IR's in-flight peak)
  int peak_slots_in_use = 0;    // measured
  int peak_stashed_copies = 0;  // measured extra weight copies
  // recompute: a stage input kept from F to B (0 on the first stage, which re-reads its
  // tokens), and the most kept at once; one slot then serves the forward and the rerun.
  size_t input_bytes = 0;
  int peak_inputs_kept = 0;
  // Measured by the allocator (exec/model/metered_backend.h): the most bytes this stage had
  // allocated at once, every allocation included (weights, gradients, AdamW state, slots,
  // scratch, message buffers, stashed copies, kept inputs); and the same for all the stages
  // of its device together.
  size_t allocated_peak = 0;
  size_t device_allocated_peak = 0;
  size_t allocations = 0;  // allocator calls of this stage over the run (none per update)
  // Held for the whole run besides the above: scratch and the four message buffers.
  size_t workspace_bytes = 0;
  size_t peak_activation_bytes() const {
    return peak_slots_in_use * slot_bytes + peak_inputs_kept * input_bytes;
  }
  size_t peak_bytes() const {
    return param_bytes * (1 + peak_stashed_copies) + grad_bytes + optimizer_bytes + workspace_bytes +
           peak_activation_bytes();
  }
};

// This process's peak resident set size so far, in bytes (getrusage; 0 if unknown).
double peak_rss_bytes();

// Weights and optimizer state of every stage at one version.
struct Snapshot {
  int version = 0;
  std::vector<std::vector<float>> params, m, v;  // [stage]
};

// Results cover the stages this process runs; entries of other stages stay NaN / -1 / empty.
struct RunResult {
  std::vector<float> mb_loss;                  // per micro-batch (last stage)
  std::vector<double> batch_loss;              // mean over each global batch (update)
  std::vector<std::vector<int>> v_fwd, v_bwd;  // [stage][mb] versions recorded
  std::vector<ActionRecord> actions;           // in completion order per device
  std::vector<StageMemory> memory;             // [stage]
  double seconds = 0;
  bool interrupted = false;
};

// Progress after an update k has been applied by every local stage (called from a worker
// thread, serialised). loss is NaN unless this process runs the last stage.
struct UpdateEvent {
  int update = 0;        // global batch index (0-based)
  double loss = 0;       // mean training loss of that batch
  double lr = 0;
  double seconds = 0;    // since the run started
  const Snapshot* snapshot = nullptr;  // when snapshot_every says so
};

class PipelineRuntime {
 public:
  // transport: nullptr runs the stages as threads with an in-process mailbox.
  PipelineRuntime(const Schedule& schedule, const RunConfig& config, BatchSource& data,
                  Transport* transport = nullptr);
  ~PipelineRuntime();

  // Runs the whole schedule. Throws std::runtime_error naming the device and action when
  // a worker fails or waits past the stall timeout. If *stop becomes true, workers stop
  // after their current action and the result says interrupted.
  RunResult run(const std::function<void(const UpdateEvent&)>& on_update = {},
                const std::atomic<bool>* stop = nullptr);

  int num_stages() const;
  bool is_local(int stage) const;
  StageModel& stage(int s);
  AdamW& optimizer(int s);
  // Replaces weights and optimizer state (resume); the snapshot's version becomes current.
  void restore(const Snapshot& snap);
  // After run(): moves out the newest snapshot that every stage completed (snapshot_every
  // must be > 0). Returns false if there is none.
  bool take_latest_snapshot(Snapshot& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace paci
