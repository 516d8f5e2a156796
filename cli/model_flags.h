// Model and pipeline flags shared by `paci train`, `paci calibrate` and `paci compare`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "exec/model/config.h"
#include "exec/model/partition.h"
#include "schedules/registry.h"

namespace paci::cli {

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
  // Layers per stage from --partition (empty: balanced).
  std::vector<int> layers_per_stage() const;
  std::vector<StagePartition> stage_partition(const GptConfig& cfg, int stages) const;
};

struct ScheduleFlags {
  std::string schedule = "1f1b";
  int stages = 1, microbatches = 4, steps = 20;
  std::optional<int> virtual_stages, accum;

  void add_to(CLI::App* cmd);
  ScheduleParams params() const;
};

}  // namespace paci::cli
