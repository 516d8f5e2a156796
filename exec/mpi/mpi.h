// One process per pipeline rank under mpirun or srun: the MPI session and the transport
// that carries activations and gradients between ranks.
#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <string>
#include <vector>

#include "exec/runtime/rank_group.h"
#include "exec/runtime/transport.h"
#include "schedules/ir.h"

namespace paci {

// True when a launcher (OpenMPI's mpirun, PMI/PMIx as under Slurm's srun) started this
// process as one of several ranks.
bool launched_by_mpi_launcher();

// MPI_Init_thread / MPI_Finalize. Collective helpers move raw bytes.
class MpiSession : public RankGroup {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession() override;
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // Barriers and gathers are point-to-point messages on a communicator of their own, posted
  // non-blocking and polled against a deadline (default 60 s; the trainer sets
  // --stall-timeout): a rank that does not arrive makes the waiting rank throw
  // std::runtime_error naming itself, the rank(s) it waited for and `what`; main then ends
  // the job (MPI_Abort), so no rank outlives a stuck one.
  void set_timeout(std::chrono::milliseconds timeout) override { timeout_ = timeout; }
  void barrier(const std::string& what) override { barrier(what, timeout_); }
  void barrier(const std::string& what, std::chrono::milliseconds timeout);
  // Every rank's `mine`, on root (empty elsewhere).
  std::vector<std::string> gather(const std::string& mine, int root, const std::string& what) override;
  // Ends every rank of the job with `code`.
  [[noreturn]] void abort(int code) const;

 private:
  struct Requests;
  void wait(Requests& reqs, const std::string& what, std::chrono::milliseconds timeout);
  int next_tag();
  int rank_ = 0, size_ = 1;
  int seq_ = 0;
  void* comm_ = nullptr;  // MPI_Comm (a duplicate of MPI_COMM_WORLD) for collectives
  std::chrono::milliseconds timeout_{60000};
};

// Transport over MPI point-to-point: each message is a small header (checked on receipt:
// kind, stage, micro-batch, length) followed by the floats, sent with MPI_Isend to the rank
// that runs the receiving stage; receives are posted for the exact source and tag and
// polled, so a rank that died or stopped answering ends in a timeout instead of a hang.
class MpiTransport : public Transport {
 public:
  // Sends still in flight when the transport is destroyed are awaited at most
  // `stall_timeout`; then the job is aborted with an error naming the receiving rank.
  explicit MpiTransport(const Schedule& schedule,
                        std::chrono::milliseconds stall_timeout = std::chrono::milliseconds(60000));
  ~MpiTransport() override;
  void send(const MessageKey& key, const float* data, size_t n) override;
  bool recv(const MessageKey& key, float* out, size_t n, std::chrono::milliseconds timeout) override;
  void abort() override { aborted_ = true; }
  bool aborted() const override { return aborted_.load(); }
  // The rank a message for `key` comes from.
  int source_rank(const MessageKey& key) const;

 private:
  struct Pending;
  void reap_sends(bool wait);
  std::vector<int> stage_device_;
  std::chrono::milliseconds stall_timeout_;
  std::list<Pending*> sends_;
  std::atomic<bool> aborted_{false};
};

}  // namespace paci
