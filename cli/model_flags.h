// Model and pipeline flags shared by `paci train`, `paci calibrate` and `paci compare`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "exec/model/config.h"
#include "exec/model/partition.h"
#include "schedules/registry.h"
#include "schedules/source.h"
#include "sim/calibrate/calibration.h"

namespace paci::cli {

// --batch is at most kMaxBatch sequences, and a run whose estimated memory (estimated_bytes:
// fp32 weights, gradients and AdamW state plus one micro-batch's activations) exceeds the
// machine's physical memory is refused before anything is allocated.
inline constexpr int kMaxBatch = 65536;
double estimated_bytes(const GptConfig& cfg, int batch, int seq_len);
double physical_memory_bytes();  // 0 if unknown

struct ModelFlags {
  std::string model = "tiny";
  std::optional<int> layers, channels, heads, seq, vocab;
  bool tied = false;
  int batch = 4;
  std::string partition;

  void add_to(CLI::App* cmd, bool with_vocab_help_for_synthetic = true);
  // The model (UsageError naming the flag when impossible) and B, T.
  GptConfig config(bool synthetic_data) const;
  int seq_len(const GptConfig& cfg) const;
  // --partition as a layout (exec/model/partition.h: parse_layout), or balanced by cost.
  std::vector<StagePartition> stage_partition(const GptConfig& cfg, int stages) const;
  // zb-1p, zb-2p and paci-dynamic for this model: built from the analytic cost model of the
  // model and its partition (an H100 in fp32: only the ratios of F, I, W and the memory matter
  // to the order they produce).
  // With a calibration file, from the calibrated costs of that partition instead.
  ScheduleBuilders schedule_builders(const GptConfig& cfg, const std::string& calibration = "") const;
};

// --partition LAYOUT for `stages` stages (any number when 0; UsageError naming the flag), or
// balanced by cost when the layout is empty.
std::vector<StagePartition> partition_flag(const GptConfig& cfg, const std::string& layout, int stages);

// A calibration file (`paci calibrate --out`); UsageError naming the file when it is bad.
Calibration load_calibration(const std::string& path);

// The schedule flags of `show`, `sim`, `train` and `compare`, defined once. Each command sets
// its defaults before add_to (`sim` needs -P and -M; `train` runs 20 steps, `sim` 4, `compare` 6,
// `show` 1), and the help text shows them.
struct ScheduleFlags {
  std::string schedule = "1f1b";
  std::string file;    // --file: a schedule file (CSV / JSON) instead of --schedule
  std::string policy;  // --policy: the weight policy of a CSV file (CSV has none)
  std::string backward;  // --backward: current, forward or recompute (empty: the schedule's)
  int stages = 1, microbatches = 4, steps = 20;
  std::optional<int> virtual_stages, accum;
  CLI::Option* steps_opt = nullptr;
  CLI::Option* microbatches_opt = nullptr;

  void add_to(CLI::App* cmd, const std::string& schedule_help = "");
  ScheduleParams params() const;
  // The schedule source: --file (its own steps unless --steps is given; -M and --policy hints
  // for a CSV), or the generator --schedule with the parameters.
  ScheduleRequest request() const;
  // The same for another generator `name` (sim --compare), given only the parameters it uses.
  ScheduleRequest request_for(const std::string& name) const;
};

}  // namespace paci::cli
