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
  void barrier() override;
  // Every rank's `mine`, on root (empty elsewhere).
  std::vector<std::string> gather(const std::string& mine, int root) override;
  std::string broadcast(const std::string& value, int root);
  // Ends every rank of the job with `code`.
  [[noreturn]] void abort(int code) const;

 private:
  int rank_ = 0, size_ = 1;
};

// Transport over MPI point-to-point: each message is a small header (checked on receipt:
// kind, stage, micro-batch, length) followed by the floats, sent with MPI_Isend to the rank
// that runs the receiving stage; receives are posted for the exact source and tag and
// polled, so a rank that died or stopped answering ends in a timeout instead of a hang.
class MpiTransport : public Transport {
 public:
  explicit MpiTransport(const Schedule& schedule);
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
  std::list<Pending*> sends_;
  std::atomic<bool> aborted_{false};
};

}  // namespace paci
