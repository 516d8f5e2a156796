// How the trainer talks to the other processes of a run with one process per pipeline rank
// (implemented over MPI in exec/mpi). A threaded run has no RankGroup.
#pragma once

#include <string>
#include <vector>

namespace paci {

class RankGroup {
 public:
  virtual ~RankGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void barrier() = 0;
  // Every rank's bytes on root (empty vector elsewhere).
  virtual std::vector<std::string> gather(const std::string& mine, int root) = 0;
};

}  // namespace paci
