#include "exec/data/loader.h"

#include <filesystem>
#include <stdexcept>

#include "exec/data/shard.h"

namespace paci {

TokenLoader::TokenLoader(const std::string& path, int B, int T) : path_(path), B_(B), T_(T) {
  if (B <= 0 || T <= 0) {
    throw std::invalid_argument(
        "TokenLoader: batch size B and sequence length T must be positive, got B=" +
        std::to_string(B) + " T=" + std::to_string(T));
  }
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw std::runtime_error(path +
                             ": token shard not found; run `paci data prepare` to create it");
  }
  tokens_ = read_token_shard(path);
  const int64_t needed = static_cast<int64_t>(B) * T + 1;
  if (num_tokens() < needed) {
    throw std::runtime_error(path + ": holds " + std::to_string(num_tokens()) +
                             " tokens, fewer than the " + std::to_string(needed) +
                             " one batch of B=" + std::to_string(B) + " x T=" + std::to_string(T) +
                             " needs; use a smaller B or T");
  }
}

TokenBatch TokenLoader::next() {
  TokenBatch batch;
  next(&batch);
  return batch;
}

void TokenLoader::next(TokenBatch* batch) {
  const int64_t n = static_cast<int64_t>(B_) * T_;
  if (position_ + n + 1 > num_tokens()) position_ = 0;
  batch->B = B_;
  batch->T = T_;
  batch->inputs.resize(n);
  batch->targets.resize(n);
  const uint16_t* src = tokens_.data() + position_;
  for (int64_t i = 0; i < n; ++i) {
    batch->inputs[i] = src[i];
    batch->targets[i] = src[i + 1];
  }
  position_ += n;
}

void TokenLoader::seek(int64_t position) {
  if (position < 0 || position >= num_tokens()) {
    throw std::out_of_range(path_ + ": seek to token " + std::to_string(position) +
                            " outside [0, " + std::to_string(num_tokens()) + ")");
  }
  position_ = position;
}

int64_t TokenLoader::batches_per_pass() const {
  return (num_tokens() - 1) / (static_cast<int64_t>(B_) * T_);
}

}  // namespace paci
