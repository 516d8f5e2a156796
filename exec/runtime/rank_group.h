// How the trainer talks to the other processes of a run with one process per pipeline rank
// (implemented over MPI in exec/mpi). A threaded run has no RankGroup.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace paci {

// Every wait is bounded: a rank that does not arrive within the group's timeout makes the
// collective throw std::runtime_error naming the waiting rank, the rank(s) it waited for and
// `what` (e.g. "the checkpoint of step 4"); the caller then ends the job.
class RankGroup {
 public:
  virtual ~RankGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void set_timeout(std::chrono::milliseconds timeout) = 0;
  virtual void barrier(const std::string& what) = 0;
  // Every rank's bytes on root (empty vector elsewhere).
  virtual std::vector<std::string> gather(const std::string& mine, int root, const std::string& what) = 0;
};

}  // namespace paci
