// Micro-batches from an llm.c token shard held in memory: micro-batch mb is the window of
// B·T+1 tokens starting at (mb·B·T) modulo the usable length, so the data order is a pure
// function of the micro-batch id (and the data position of a checkpoint is just that id).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exec/data/shard.h"
#include "exec/runtime/batch_source.h"

namespace paci {

class ShardBatches : public BatchSource {
 public:
  // Throws ShardError (missing, corrupt, with vocab > 0 a token >= vocab) or
  // std::invalid_argument if the shard is shorter than one micro-batch.
  ShardBatches(const std::string& path, int B, int T, int vocab = 0);
  void get(int64_t mb, int* tokens, int* targets) override;
  int batch_size() const override { return B_; }
  int seq_len() const override { return T_; }
  int64_t tokens() const { return static_cast<int64_t>(data_.size()); }

 private:
  std::vector<uint16_t> data_;
  int B_, T_;
};

}  // namespace paci
