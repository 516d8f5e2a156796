// Transport between GPU ranks over NCCL: grouped ncclSend/ncclRecv on a communication stream,
// ordered against the compute stream with events. NCCL point-to-point has no tags: the k-th
// send from A to B meets the k-th receive on B from A, so the constructor checks that the
// schedule keeps every device pair in order (exec/runtime/p2p_order.h).
//
// Buffers passed to send/recv are device pointers. The unique id of the communicator is made
// by rank 0 and broadcast over MPI (exec/mpi) by the caller; on one GPU a 1-rank communicator
// with self send/receive exercises the same calls.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "exec/runtime/transport.h"
#include "schedules/ir.h"

namespace paci {

class NcclTransport : public Transport {
 public:
  // unique_id: ncclUniqueId bytes (NCCL_UNIQUE_ID_BYTES), the same on every rank.
  // compute_stream: the cudaStream_t the stage's kernels run on (as void*).
  NcclTransport(const Schedule& schedule, int rank, int ranks, const std::string& unique_id,
                void* compute_stream);
  ~NcclTransport() override;
  static std::string make_unique_id();  // on rank 0

  void send(const MessageKey& key, const float* data, size_t n) override;
  bool recv(const MessageKey& key, float* out, size_t n, std::chrono::milliseconds timeout) override;
  void abort() override;
  bool aborted() const override { return aborted_; }

 private:
  struct State;
  int peer_of_sender(const MessageKey& key) const;
  std::vector<int> stage_device_;
  std::unique_ptr<State> st_;
  bool aborted_ = false;
};

// The GPU check's smoke test: a 1-rank communicator sends `n` floats to itself and receives
// them; returns "" on success or what went wrong.
std::string nccl_self_send_recv(size_t n);

}  // namespace paci
