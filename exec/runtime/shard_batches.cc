#include "exec/runtime/shard_batches.h"

#include <stdexcept>

#include <fmt/format.h>

namespace paci {

ShardBatches::ShardBatches(const std::string& path, int B, int T, int vocab)
    : data_(read_token_shard(path, vocab)), B_(B), T_(T) {
  if (static_cast<int64_t>(data_.size()) < static_cast<int64_t>(B) * T + 1)
    throw std::invalid_argument(fmt::format("{}: {} tokens, fewer than one micro-batch of "
                                            "{} x {} + 1", path, data_.size(), B, T));
}

void ShardBatches::get(int64_t mb, int* tokens, int* targets) {
  const int64_t span = static_cast<int64_t>(B_) * T_;
  const int64_t usable = static_cast<int64_t>(data_.size()) - 1;
  const int64_t start = (mb * span) % (usable - span + 1);
  for (int64_t i = 0; i < span; ++i) {
    tokens[i] = data_[start + i];
    targets[i] = data_[start + i + 1];
  }
}

}  // namespace paci
