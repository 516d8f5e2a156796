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
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "exec/runtime/p2p_order.h"
#include "schedules/ir.h"
#include "schedules/registry.h"

namespace paci::cuda {
namespace {

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
  EXPECT_NE(nccl_first_stuck(nccl_ops(s, /*two_channels=*/false)), "");
  EXPECT_EQ(nccl_first_stuck(nccl_ops(s, /*two_channels=*/true)), "");
}

// Every library schedule either runs to the end on the two channels, or the NCCL transport
// refuses it with one line before any operation: the V placements send activations and
// gradients between one pair in different orders (p2p_order_mismatch), and interleaved-zb's
// order deadlocks the in-order channels at some sizes (nccl_deadlock). The schedules that ran
// on NCCL before those were added are never refused.
TEST(NcclChannel, TwoChannelsNeverDeadlockTheLibrary) {
  int checked = 0, refused = 0;
  const std::set<std::string> always = {"gpipe", "1f1b", "paci", "interleaved-1f1b", "zb-h1", "pipedream",
                                        "pipedream-2bw"};
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
        const std::string stuck = nccl_first_stuck(nccl_ops(s, true));
        if (p2p_order_mismatch(s) || !stuck.empty()) {
          EXPECT_FALSE(always.count(info.name)) << info.name << " P=" << P << " M=" << M << ": " << stuck;
          if (p2p_order_mismatch(s)) EXPECT_EQ(s.spec.virtual_stages, 2) << info.name;
          // The transport's check says the same, in one line naming the schedule.
          if (!stuck.empty()) {
            ASSERT_TRUE(nccl_deadlock(s).has_value()) << info.name;
            EXPECT_EQ(nccl_deadlock(s)->find(info.name), 0u);
          }
          ++refused;
          continue;
        }
        EXPECT_FALSE(nccl_deadlock(s).has_value()) << info.name;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace paci::cuda
