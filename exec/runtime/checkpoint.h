// paci's own checkpoint. Layout of a checkpoint folder DIR (what `--save DIR` names):
//
//   DIR/step-000050/checkpoint.json   the manifest: what was run (model, partition, schedule,
//                                     optimizer, step, data position, seed) and, per stage
//                                     file, its size and FNV-1a 64 checksum
//   DIR/step-000050/stage-0.bin ...   one binary file per stage: header, weights, AdamW m, v
//
// A save writes DIR/step-N.tmp/ (each stage file fsync'd; under MPI each rank writes its
// own stages), then the manifest (written last, fsync'd), fsyncs the folder, renames it to
// DIR/step-N/ and fsyncs DIR: that rename is the commit. Only then are older step-*/
// folders retired (renamed to step-K.del, then removed). So at every instant DIR holds at
// least one complete checkpoint once the first save has committed, and a kill at any point
// of a save leaves the previous one (or the new one) loadable. `load_checkpoint(DIR)` takes
// the newest complete step-*/ folder (one with a manifest; *.tmp and *.del are ignored), or
// DIR itself when DIR holds a manifest. A checkpoint whose stage file does not match its
// manifest (size or checksum), or whose weights or optimizer moments are not finite, is
// refused naming the file; the loader never falls back silently to an older one.
//
// `--save DIR` accepts a missing path, an empty folder, or a folder that already holds a
// paci checkpoint; anything else (a regular file, a folder with other content) is refused
// before any work, and nothing but paci's own step-* folders is ever removed.
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
inline constexpr int kCheckpointVersion = 2;

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

// FNV-1a 64 of bytes (the stage files' checksum), continuing from `h`.
uint64_t fnv1a64(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ULL);

// Throws CheckpointError unless `dir` may be used by --save: missing, an empty folder, or a
// folder holding a paci checkpoint, and writable (probed with a temporary file that is
// removed again).
void check_checkpoint_target(const std::string& dir);

// Writes DIR/step-<meta.step>/ as described above and returns its path. With a RankGroup
// every rank writes the stages it holds (non-empty snap.params entries) and rank 0
// completes the checkpoint; all ranks must call it.
std::string save_checkpoint(const std::string& dir, const CheckpointMeta& meta, const Snapshot& snap,
                            RankGroup* group = nullptr);

// The folder of the newest complete checkpoint under `dir` ("" if none).
std::string find_checkpoint(const std::string& dir);

// Loads the newest complete checkpoint under `dir`. Throws CheckpointError naming the file
// and what is wrong (none here, bad magic or version, truncated, checksum mismatch, NaN or
// inf values, sizes that do not match the model). Returns the folder loaded.
std::string load_checkpoint(const std::string& dir, CheckpointMeta& meta, Snapshot& snap);

}  // namespace paci
