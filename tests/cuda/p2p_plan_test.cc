// NcclTransport's channel plan (exec/cuda/p2p_plan.h), checked on the CPU against the schedule
// library: each device's thread issues its messages in program order (a send is queued and the
// thread goes on; a receive is queued and the thread waits for it), each channel of a device
// executes its queue in order, and a send completes only together with its receive (the
// rendezvous NCCL does once a message exceeds its buffer). With one channel (the old design:
// one in-order comm stream), 1F1B deadlocks at the warm-up/steady transition; with the plan's
// two channels no schedule does. Messages between stages on the same device never use NCCL.
#include "exec/cuda/p2p_plan.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "schedules/ir.h"
#include "schedules/registry.h"

namespace paci::cuda {
namespace {

struct Op {
  bool send;
  int peer;
  int channel;
};

// Per device, the NCCL operations in program order.
std::vector<std::vector<Op>> nccl_ops(const Schedule& s, bool two_channels) {
  const int S = static_cast<int>(s.stage_device.size());
  std::vector<std::vector<Op>> ops(s.programs.size());
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

// "" when every device finishes, else where it stuck.
std::string run(const std::vector<std::vector<Op>>& ops) {
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
        const Op& o = ops[d][pc[d]];
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
      const Op& o = ops[d][q.front()];
      if (!o.send) continue;
      auto& pq = queue[{o.peer, ch}];
      if (pq.empty()) continue;
      const Op& r = ops[o.peer][pq.front()];
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

TEST(NcclChannel, SenderAndReceiverAgree) {
  for (int a = 0; a < 8; ++a)
    for (int b = 0; b < 8; ++b) {
      if (a == b) continue;
      EXPECT_EQ(nccl_channel(a, b), b > a ? kToHigherRank : kToLowerRank);
      EXPECT_NE(nccl_channel(a, b), nccl_channel(b, a));  // the two directions never share
    }
}

TEST(NcclChannel, OneInOrderStreamDeadlocks1F1B) {
  ScheduleParams p;
  p.stages = 4;
  p.microbatches = 8;
  const Schedule s = make_schedule("1f1b", p);
  EXPECT_NE(run(nccl_ops(s, /*two_channels=*/false)), "");
  EXPECT_EQ(run(nccl_ops(s, /*two_channels=*/true)), "");
}

TEST(NcclChannel, TwoChannelsNeverDeadlockTheLibrary) {
  int checked = 0;
  for (const ScheduleInfo& info : schedule_catalog()) {
    if (info.needs_cost_model) continue;
    for (int P : {2, 4, 8}) {
      for (int M : {P, 2 * P}) {
        ScheduleParams p;
        p.stages = P;
        p.microbatches = M;
        p.steps = 2;
        if (info.uses_accum) p.accum = 2;
        Schedule s;
        try {
          s = make_schedule(info.name, p);
        } catch (const std::exception&) {
          continue;  // parameters this generator does not take
        }
        EXPECT_EQ(run(nccl_ops(s, true)), "") << info.name << " P=" << P << " M=" << M;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace paci::cuda
