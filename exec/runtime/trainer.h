// Training with a schedule: the loop around PipelineRuntime that a user runs. It splits
// the run into pipeline segments at checkpoint boundaries (every --save-every steps; a
// segment ends with a flush, so a resumed run equals an uninterrupted one with the same
// segments bit for bit), evaluates on consistent snapshots, writes checkpoints, metrics
// JSONL and progress, and stops cleanly on request.
//
// Interrupts (opt.stop set by SIGINT / SIGTERM): the workers stop and nothing is written.
// The state kept is that of the last segment boundary, which is already on disk: the
// newest checkpoint of --save (written at the end of the last segment), or the --resume
// checkpoint the run started from. Resuming from it therefore gives the bits of an
// uninterrupted run with the same --save-every, wherever the interrupt landed; the steps
// after that boundary are redone. A run interrupted in its first segment with no checkpoint
// behind it keeps nothing (a new run starts from step 0); the report says which case it is.
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
#include "schedules/source.h"

namespace paci {

// Test hooks (fault injection), called on the training thread; empty in normal runs.
struct TrainHooks {
  std::function<void(int updates_done)> after_update;
  std::function<void(int step)> before_checkpoint;  // about to write the checkpoint of `step`
};

struct TrainOptions {
  // The schedule, from any source (schedules/source.h): its steps are the run's. Segments
  // (--save-every) are cut from the same source: regenerated for a name, repeated for a file.
  ScheduleRequest schedule;
  ScheduleBuilders builders;           // schedules built from a cost model (zb-1p, zb-2p)
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
  TrainHooks hooks;
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
  int interrupted_at = 0;                        // updates done when the interrupt landed
  std::string checkpoint;                        // last checkpoint written, if any; after an
                                                 // interrupt: the folder to --resume from
                                                 // ("" = none, restart from step 0)
  int resume_step = 0;                           // after an interrupt: where a resume restarts
  bool reports = true;                           // this process holds the losses (last stage)
};

// Throws std::invalid_argument for impossible options (message names the flag),
// CheckpointError for a checkpoint that cannot be read or written, and std::runtime_error
// for failures during the run.
TrainReport train(const TrainOptions& opt);

// One process per pipeline rank: every rank's action records and stage memory, merged on rank
// 0 (`stages` entries); the other ranks' vectors are left as they were.
void gather_run_record(RankGroup& group, std::vector<ActionRecord>& actions, std::vector<StageMemory>& memory,
                       size_t stages);

// Throws std::invalid_argument unless `path` (given as `flag`) can be written as a file:
// not a folder, and its folder exists and takes a new file (probed with a temporary file
// that is removed again). An empty path passes.
void check_output_file(const std::string& flag, const std::string& path);
// Every output of `opt` (--save, --metrics, --export-llmc), before any work; train() calls
// it too.
void check_outputs(const TrainOptions& opt);

}  // namespace paci
