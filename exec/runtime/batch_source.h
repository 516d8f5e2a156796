// Where micro-batches come from: micro-batch mb is a pure function of its id, so every
// stage (thread or process) that needs its tokens or targets reads the same ones, and a
// run with P stages sees exactly the batches of a run with one.
#pragma once

#include <cstdint>

namespace paci {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // tokens and targets: [B, T] each (targets = next tokens).
  virtual void get(int64_t mb, int* tokens, int* targets) = 0;
  virtual int batch_size() const = 0;  // B
  virtual int seq_len() const = 0;     // T
};

// Deterministic pseudo-random tokens in [0, vocab) with a learnable structure (each
// sequence counts up from a random start modulo vocab): for tests without a dataset.
class SyntheticBatches : public BatchSource {
 public:
  SyntheticBatches(int B, int T, int vocab, uint64_t seed) : B_(B), T_(T), V_(vocab), seed_(seed) {}
  void get(int64_t mb, int* tokens, int* targets) override {
    for (int b = 0; b < B_; ++b) {
      uint64_t x = seed_ ^ (static_cast<uint64_t>(mb) * 0x9E3779B97F4A7C15ull + b * 0xBF58476D1CE4E5B9ull);
      x ^= x >> 31;
      x *= 0x94D049BB133111EBull;
      x ^= x >> 29;
      int start = static_cast<int>(x % V_);
      for (int t = 0; t < T_; ++t) {
        tokens[b * T_ + t] = (start + t) % V_;
        targets[b * T_ + t] = (start + t + 1) % V_;
      }
    }
  }
  int batch_size() const override { return B_; }
  int seq_len() const override { return T_; }

 private:
  int B_, T_, V_;
  uint64_t seed_;
};

}  // namespace paci
