// Training with a schedule: the loop around PipelineRuntime that a user runs. It splits
// the run into pipeline segments at checkpoint boundaries (every --save-every steps; a
// segment ends with a flush, so a resumed run equals an uninterrupted one with the same
// segments bit for bit), evaluates on consistent snapshots, writes checkpoints, metrics
// JSONL and progress, and stops cleanly on request with a checkpoint.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <iosfwd>
#include <string>
#include <vector>

#include "exec/model/config.h"
#include "exec/model/optimizer.h"
#include "exec/model/partition.h"
#include "exec/runtime/batch_source.h"
#include "exec/runtime/rank_group.h"
#include "exec/runtime/runtime.h"
#include "schedules/registry.h"

namespace paci {

struct TrainOptions {
  std::string schedule = "1f1b";
  ScheduleParams params;               // stages, microbatches, steps (N), virtual, accum
  GptConfig model;
  std::vector<StagePartition> partition;  // one per stage; empty: balanced by cost
  int micro_batch = 4;                 // B
  int seq_len = 64;                    // T
  AdamWConfig adamw;                   // total_steps = 0: set to the run's updates
  uint64_t seed = 1337;
  int eval_every = 0;                  // updates; 0 = only at the end
  int eval_batches = 8;
  std::string save_dir;                // checkpoint directory ("" = none, except on interrupt)
  int save_every = 0;                  // updates per segment; 0 = one segment
  std::string resume_dir;
  std::string init_llmc;               // start from llm.c fp32 weights (tied models)
  std::string export_llmc;             // write the final weights in llm.c's format (tied models)
  std::string metrics_path;            // JSONL
  std::string interrupt_dir = "paci-checkpoint";  // where Ctrl-C saves without --save
  BatchSource* train = nullptr;
  BatchSource* val = nullptr;          // nullptr: no validation
  std::ostream* log = nullptr;         // progress lines
  bool live = false;                   // rewrite the progress line in place (a terminal)
  const std::atomic<bool>* stop = nullptr;
  std::chrono::milliseconds stall_timeout{60000};
  // One process per rank: this process runs device group->rank() and talks to the others
  // through `transport`; progress and metrics come from the rank of the last stage, the
  // trace is gathered on rank 0, every rank writes its stages of a checkpoint.
  RankGroup* group = nullptr;
  Transport* transport = nullptr;
  // Backends per stage (GPU); empty = CPU. peak_flops > 0 adds MFU to the progress line.
  std::function<std::unique_ptr<Backend>(int stage)> make_backend;
  std::function<std::unique_ptr<Transport>(const std::vector<Backend*>&)> make_transport;  // threads only
  double peak_flops = 0;
  // Fault injection for tests: rank `hang_rank` stops answering after update `hang_after`.
  int hang_rank = -1, hang_after = -1;
};

struct TrainReport {
  std::vector<double> loss;                      // per update (global batch)
  std::vector<std::pair<int, double>> val_loss;  // (update, loss)
  std::vector<ActionRecord> actions;             // of the last segment (its own clock);
                                                 // with a RankGroup all ranks' on rank 0
  std::vector<StageMemory> memory;               // per stage, peak over segments
  // Recorded drift (backward version - forward version) per stage over all segments, for
  // the stages this process runs.
  std::vector<int> max_drift;
  std::vector<double> mean_drift;
  Schedule schedule;                             // of the last segment
  double seconds = 0;                            // training time, evaluation excluded
  double tokens_per_second = 0;
  int updates_done = 0;
  bool interrupted = false;
  std::string checkpoint;                        // last checkpoint written, if any
  bool reports = true;                           // this process holds the losses (last stage)
};

// Throws std::invalid_argument for impossible options (message names the flag) and
// std::runtime_error for failures during the run.
TrainReport train(const TrainOptions& opt);

}  // namespace paci
