// paci's own checkpoint: a directory with checkpoint.json (what was run: model, partition,
// schedule, optimizer, step, data position, seed) and one binary file per stage (weights,
// AdamW m and v). Written into a temporary directory that is renamed into place, so an
// interrupted save never leaves a half-written checkpoint. One file per stage lets each rank
// of a multi-process run write its own.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "exec/model/config.h"
#include "exec/model/optimizer.h"
#include "exec/model/partition.h"
#include "exec/runtime/rank_group.h"
#include "exec/runtime/runtime.h"

namespace paci {

inline constexpr int32_t kCheckpointMagic = 0x70616369;  // "paci"
inline constexpr int kCheckpointVersion = 1;

class CheckpointError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CheckpointMeta {
  GptConfig model;
  std::vector<StagePartition> partition;
  std::string schedule;       // generator name
  int stages = 1, microbatches = 1, virtual_stages = 1, accum = 1;
  int micro_batch = 1, seq_len = 1;  // B, T
  int step = 0;               // updates applied; also the version of every stage
  int total_steps = 0;        // of the whole run
  int segment_steps = 0;      // steps per pipeline segment (flush between segments)
  int64_t data_position = 0;  // next micro-batch id of the training data
  uint64_t seed = 0;
  AdamWConfig adamw;
};

// With a RankGroup every rank writes the stages it holds (non-empty snap.params entries)
// and rank 0 completes the checkpoint; all ranks must call it.
void save_checkpoint(const std::string& dir, const CheckpointMeta& meta, const Snapshot& snap,
                     RankGroup* group = nullptr);
// Throws CheckpointError naming the file and what is wrong (missing, bad magic or version,
// truncated, sizes that do not match the model).
void load_checkpoint(const std::string& dir, CheckpointMeta& meta, Snapshot& snap);

}  // namespace paci
