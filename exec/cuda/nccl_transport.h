// Transport between GPU ranks over NCCL. NCCL point-to-point has no tags: the k-th send from A
// to B meets the k-th receive on B from A, so the constructor checks that the schedule keeps
// every device pair in order (exec/runtime/p2p_order.h).
//
// Ordering (the plan, in the order the calls reach the streams):
//  - send: the payload is copied on the COMPUTE stream into a per-message device buffer
//    (pooled by size), so the next kernel that rewrites the stage's reused output buffer is
//    ordered after that copy by the compute stream itself; the comm stream waits on an event
//    recorded after the copy, sends from the per-message buffer, and records `sent`, after which
//    the buffer goes back to the pool. The compute stream never waits for a send: sends are
//    buffered, as the Transport contract says.
//  - recv: an event recorded on the compute stream at the call (after every kernel queued so
//    far, which may still read the landing buffer) is waited on by the comm stream before
//    ncclRecv writes the landing buffer; the host polls the `done` event (timeout, abort), and
//    the compute stream waits on `done` before using the data.
//  - Two communicators, each on its own stream: one carries the messages to a higher rank, the
//    other the messages to a lower rank (the second is ncclCommSplit from the first). Within
//    each, every message goes one way along the ranks, so in-order execution per communicator
//    cannot form a cycle; and a rank's send to the next rank never waits behind its receive
//    from the next rank (the 1F1B warm-up/steady transition, where both ends send first: with
//    one in-order stream and a message larger than NCCL's buffer, both sends wait for receives
//    queued behind them). NCCL does not promise that two communicators' kernels progress
//    concurrently; point-to-point kernels use few SMs, so on a GPU with SMs to spare they do.
//  - A message to the same rank (two stages on one device) is a device-to-device copy on the
//    compute stream, never NCCL.
//  - Every call sets the rank's CUDA device first (cudaSetDevice(cuda_device)).
//
// Buffers passed to send/recv are device pointers. The unique id of the communicator is made
// by rank 0 and broadcast over MPI (exec/mpi) by the caller; on one GPU a 1-rank communicator
// with self send/receive exercises the NCCL calls (nccl_self_send_recv).
#pragma once

#include <atomic>
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
  // cuda_device: this rank's GPU on its node (the local rank), set before every CUDA call.
  NcclTransport(const Schedule& schedule, int rank, int ranks, const std::string& unique_id,
                void* compute_stream, int cuda_device = 0);
  ~NcclTransport() override;
  static std::string make_unique_id();  // on rank 0

  void send(const MessageKey& key, const float* data, size_t n) override;
  bool recv(const MessageKey& key, float* out, size_t n, std::chrono::milliseconds timeout) override;
  void abort() override;
  bool aborted() const override { return aborted_.load(); }

 private:
  struct State;
  int peer_of_sender(const MessageKey& key) const;
  std::vector<int> stage_device_;
  int rank_ = 0;
  std::unique_ptr<State> st_;
  std::atomic<bool> aborted_{false};  // set by abort() from any thread
};

// The GPU check's smoke test: a 1-rank communicator sends `n` floats to itself and receives
// them; returns "" on success or what went wrong.
std::string nccl_self_send_recv(size_t n);

}  // namespace paci
