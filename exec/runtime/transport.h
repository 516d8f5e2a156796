// How stages hand tensors to each other. The runtime only sends and receives keyed
// messages; an in-process mailbox implements it for threads, MPI and NCCL for one process
// per rank.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace paci {

enum class MessageKind : int {
  kActivation = 0,     // output of F(stage-1, mb), input of F(stage, mb)
  kGradient = 1,       // input gradient of B/I(stage+1, mb), read by B/I(stage, mb)
  kTiedEmbedding = 2,  // tied embeddings: the other end's embedding gradient at an update
};

// `stage` is the receiving stage; `mb` the micro-batch (for kTiedEmbedding, the update).
struct MessageKey {
  MessageKind kind;
  int stage;
  int mb;
};

std::string describe(const MessageKey& key);

// The stage that sends the message `key` names, in a pipeline of `stages` stages: the previous
// stage for an activation, the next one for a gradient, the other end for tied embeddings.
inline int sender_stage(const MessageKey& key, int stages) {
  switch (key.kind) {
    case MessageKind::kActivation: return key.stage - 1;
    case MessageKind::kGradient: return key.stage + 1;
    case MessageKind::kTiedEmbedding: return key.stage == 0 ? stages - 1 : 0;
  }
  return -1;
}

class Transport {
 public:
  virtual ~Transport() = default;
  // Hands `n` floats to the receiver and returns without waiting for it (buffered send).
  virtual void send(const MessageKey& key, const float* data, size_t n) = 0;
  // Waits until the message arrives and copies it into `out` (exactly n floats). Returns
  // false if nothing arrived within `timeout` or the transport was aborted.
  virtual bool recv(const MessageKey& key, float* out, size_t n,
                    std::chrono::milliseconds timeout) = 0;
  // Wakes every waiting receiver: another worker failed or the user interrupted.
  virtual void abort() = 0;
  virtual bool aborted() const = 0;
};

}  // namespace paci
