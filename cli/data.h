// Training data for `paci train` and `paci data prepare`.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include <CLI/CLI.hpp>

#include "exec/runtime/batch_source.h"

namespace paci::cli {

struct TrainData {
  std::unique_ptr<BatchSource> train, val;
  std::string description;
};

// spec: "sotu" (the State of the Union shards in the cache, prepared on first use),
// "synthetic" (generated, no files), or a path to NAME_train.bin with NAME_val.bin beside it.
// Throws UsageError / RunError with one clear line.
TrainData open_train_data(const std::string& spec, const std::string& cache, int B, int T,
                          int vocab, uint64_t seed, std::ostream& log);

void add_data_command(CLI::App& app);

}  // namespace paci::cli
