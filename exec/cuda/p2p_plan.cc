#include "exec/cuda/p2p_plan.h"

#include <deque>
#include <map>
#include <utility>

namespace paci::cuda {


std::vector<std::vector<NcclOp>> nccl_ops(const Schedule& s, bool two_channels) {
  const int S = static_cast<int>(s.stage_device.size());
  std::vector<std::vector<NcclOp>> ops(s.programs.size());
  for (size_t d = 0; d < s.programs.size(); ++d) {
    const int me = static_cast<int>(d);
    auto add = [&](bool send, int other_stage) {
      const int peer = s.stage_device[other_stage];
      if (peer == me) return;  // a local copy
      const int ch = two_channels ? (send ? nccl_channel(me, peer) : nccl_channel(peer, me)) : 0;
      ops[d].push_back({send, peer, ch});
    };
    for (const Action& a : s.programs[d]) {
      if (a.kind == ActionKind::F) {
        if (a.stage > 0) add(false, a.stage - 1);
        if (a.stage < S - 1) add(true, a.stage + 1);
      } else if (a.kind == ActionKind::B || a.kind == ActionKind::I) {
        if (a.stage < S - 1) add(false, a.stage + 1);
        if (a.stage > 0) add(true, a.stage - 1);
      }
    }
  }
  return ops;
}

std::string nccl_first_stuck(const std::vector<std::vector<NcclOp>>& ops) {
  const int D = static_cast<int>(ops.size());
  struct Posted {
    int device;
    size_t index;
  };
  std::vector<size_t> pc(D, 0);
  std::vector<std::vector<bool>> posted(D), done(D);
  for (int d = 0; d < D; ++d) {
    posted[d].assign(ops[d].size(), false);
    done[d].assign(ops[d].size(), false);
  }
  std::map<std::pair<int, int>, std::deque<size_t>> queue;  // (device, channel) -> op indices
  for (bool progress = true; progress;) {
    progress = false;
    for (int d = 0; d < D; ++d) {  // the threads: post sends and go on; post a receive and wait
      while (pc[d] < ops[d].size()) {
        const NcclOp& o = ops[d][pc[d]];
        if (!posted[d][pc[d]]) {
          queue[{d, o.channel}].push_back(pc[d]);
          posted[d][pc[d]] = true;
          progress = true;
        }
        if (!o.send && !done[d][pc[d]]) break;
        ++pc[d];
        progress = true;
      }
    }
    for (auto& [key, q] : queue) {  // the streams: a head send meets the peer's head receive
      if (q.empty()) continue;
      const auto [d, ch] = key;
      const NcclOp& o = ops[d][q.front()];
      if (!o.send) continue;
      auto& pq = queue[{o.peer, ch}];
      if (pq.empty()) continue;
      const NcclOp& r = ops[o.peer][pq.front()];
      if (r.send || r.peer != d) continue;
      done[d][q.front()] = done[o.peer][pq.front()] = true;
      q.pop_front();
      pq.pop_front();
      progress = true;
    }
  }
  for (int d = 0; d < D; ++d) {
    bool queued = false;
    for (int ch = 0; ch < kNcclChannels; ++ch) queued |= !queue[{d, ch}].empty();
    if (pc[d] < ops[d].size() || queued)
      return "device " + std::to_string(d) + " stuck at NCCL op " + std::to_string(pc[d]) + " of " +
             std::to_string(ops[d].size());
  }
  return "";
}

std::optional<std::string> nccl_deadlock(const Schedule& s) {
  const std::string stuck = nccl_first_stuck(nccl_ops(s, true));
  if (stuck.empty()) return std::nullopt;
  return s.name + ": its point-to-point messages would deadlock NCCL's in-order channels (" + stuck +
         " in a model of the two channels); run it with threads or MPI";
}

}  // namespace paci::cuda
