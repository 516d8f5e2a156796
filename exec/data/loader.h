// Sequential (inputs, targets) batches from an llm.c token shard, as llm.c's DataLoader serves
// them: batch k covers tokens [p, p + B*T] and targets are the inputs shifted by one token.
// Deterministic and position-addressable, so a checkpoint can store position() and a resumed run
// continues with exactly the batch it would have seen.
#ifndef PACI_EXEC_DATA_LOADER_H_
#define PACI_EXEC_DATA_LOADER_H_

#include <cstdint>
#include <string>
#include <vector>

namespace paci {

struct TokenBatch {
  int B = 0;
  int T = 0;
  std::vector<int> inputs;   // B*T, row-major (b, t)
  std::vector<int> targets;  // B*T, targets[i] = the token after inputs[i]
};

class TokenLoader {
 public:
  // Loads the whole shard (SOTU's are a few MB). Throws std::runtime_error if the file is
  // missing (naming it and suggesting `paci data prepare`), is not a valid shard, or holds fewer
  // than B*T + 1 tokens.
  TokenLoader(const std::string& path, int B, int T);

  // The batch at position(), then advances by B*T tokens. When fewer than B*T + 1 tokens remain
  // from the position, it wraps to 0 first (the short tail is skipped, as in llm.c), so every
  // batch is full and consecutive passes over the data are identical.
  TokenBatch next();
  void next(TokenBatch* batch);  // same, reusing the batch's storage

  // Token offset of the next batch. seek(position()) after a restart reproduces the same next
  // batch. seek throws std::out_of_range unless 0 <= position < num_tokens().
  int64_t position() const { return position_; }
  void seek(int64_t position);
  // Back to the start, e.g. before each validation pass.
  void reset() { position_ = 0; }

  int64_t num_tokens() const { return static_cast<int64_t>(tokens_.size()); }
  // Full batches from position 0 before the first wrap: one validation pass is this many next().
  int64_t batches_per_pass() const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int B_;
  int T_;
  std::vector<uint16_t> tokens_;
  int64_t position_ = 0;
};

}  // namespace paci

#endif  // PACI_EXEC_DATA_LOADER_H_
