// The dependency structure of a schedule: where every action sits, what it waits for, the
// Boost.Graph DAG over all actions, and in-order execution of the device programs.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "schedules/ir.h"

namespace paci {

// A schedule that breaks the IR's rules. what() is one line naming device, position and
// action; context() is the nearby timeline with a marker at the offending action.
class ScheduleError : public std::runtime_error {
 public:
  ScheduleError(const std::string& message, std::string context = {})
      : std::runtime_error(message), context_(std::move(context)) {}
  const std::string& context() const { return context_; }

 private:
  std::string context_;
};

// Renders each device's program around `marked` (±window positions) with the marked action
// in brackets: the context of a ScheduleError.
std::string program_excerpt(const Schedule& s, ActionRef marked, int window = 6);

// Where every action of a schedule sits. Action ids are dense: id = offset[device] + pos.
// Building it checks the structure: stages and micro-batches in range, each stage on its
// device, exactly one F and one B (or one I and one W) per (stage, micro-batch). Any
// stage-to-device map is allowed (d + k*D, a V, anything). An FB counts as the F and the B
// it holds: fwd() and bwd() of its halves both return its id.
//
// Compact: 8 bytes per (stage, micro-batch) for the F and B ids, and as much again for I and W
// only when the schedule splits backwards; ids are 32-bit (a schedule has
// fewer than 2^31 actions, else ScheduleError). ref() finds the device by binary search.
class ActionIndex {
 public:
  explicit ActionIndex(const Schedule& s);

  size_t size() const { return static_cast<size_t>(offset_.back()); }
  int64_t id(ActionRef r) const { return offset_[r.device] + r.pos; }
  ActionRef ref(int64_t id) const;
  const Action& action(int64_t id) const;

  // -1 when the schedule has no such action.
  int64_t fwd(int stage, int mb) const { return fb_[slot(stage, mb)].f; }
  int64_t bwd(int stage, int mb) const { return fb_[slot(stage, mb)].b; }  // B
  int64_t bwd_input(int stage, int mb) const { return iw_.empty() ? -1 : iw_[slot(stage, mb)].i; }  // I
  int64_t bwd_weight(int stage, int mb) const { return iw_.empty() ? -1 : iw_[slot(stage, mb)].w; }  // W
  // The action that produces the input gradient of (stage, mb): its B, or its I.
  int64_t grad_input(int stage, int mb) const {
    const int32_t b = fb_[slot(stage, mb)].b;
    return b >= 0 ? b : bwd_input(stage, mb);
  }
  // The action after which the stage's weight gradient of mb is complete: its B, or its W.
  int64_t grad_weight(int stage, int mb) const {
    const int32_t b = fb_[slot(stage, mb)].b;
    return b >= 0 ? b : bwd_weight(stage, mb);
  }

  // Data dependencies of an action (not program order): F(s-1,m) -> F(s,m); F(s,m) and
  // B/I(s+1,m) -> B/I(s,m); I(s,m) -> W(s,m). An OPT depends on its own stage's gradients,
  // which precede it on the same device, so program order covers it.
  // An FB depends on what its F and its B depend on.
  void data_deps(int64_t id, std::vector<int64_t>& out) const { data_deps(action(id), out); }
  void data_deps(const Action& a, std::vector<int64_t>& out) const;

 private:
  size_t slot(int stage, int mb) const { return static_cast<size_t>(stage) * T_ + mb; }
  // Appends the dependencies of one plain (non-FB) action.
  void sub_deps(const Action& a, std::vector<int64_t>& out) const;

  const Schedule& s_;
  size_t T_ = 0;                 // micro-batches of the run
  std::vector<int64_t> offset_;  // per device, and the total at the end
  struct FB { int32_t f = -1, b = -1; };
  struct IW { int32_t i = -1, w = -1; };
  std::vector<FB> fb_;  // [stage * T + mb]
  std::vector<IW> iw_;  // the same, empty without I and W
};

using DependencyGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;

// The DAG over all actions: program order on each device plus data dependencies.
DependencyGraph build_graph(const Schedule& s, const ActionIndex& index);

// Runs every device's program in order, each action starting when its device is free and
// its data dependencies are done (sends never block; receives do), with the given duration
// per action. Returns per-action start times indexed by action id. Throws ScheduleError
// when the programs deadlock or an action waits on one that comes later on its own device.
struct InOrderTimes {
  std::vector<double> start, end;
  double makespan = 0;
};
InOrderTimes run_in_order(const Schedule& s, const ActionIndex& index,
                          const std::function<double(const Action&)>& duration);

}  // namespace paci
