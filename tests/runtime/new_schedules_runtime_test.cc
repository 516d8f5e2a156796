// The runtime on the new schedules (V placements, overlapped F&B, interleaved zero bubble,
// looped BFS, paci-v): the synchronous ones give bitwise the losses and weights of one
// stage; paci-v records exactly the versions the IR predicts; tied embeddings work with the
// first and last stage on one device when the schedule allows it, and are refused otherwise.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "exec/model/cpu_backend.h"
#include "exec/runtime/p2p_order.h"
#include "exec/runtime/runtime.h"
#include "exec/runtime/shard_batches.h"
#include "tests/runtime/run_util.h"
#include "schedules/analysis.h"
#include "schedules/registry.h"

namespace paci {
namespace {

using ::testing::HasSubstr;

using testing::expect_bitwise_equal;
using testing::Outcome;
using testing::small_model;

// 4 layers, so that 4 stages (2 devices x 2) hold one block each; seed 7.
Outcome run(const Schedule& s, GptConfig model = small_model()) { return testing::run(s, 7, model); }

TEST(NewSchedulesRuntime, SynchronousOnesEqualOneStageBitwise) {
  // Every stage accumulates its micro-batches' weight gradients in micro-batch order (B, or
  // I then W, in order), so the sums, and the weights after each update, match one stage.
  const int M = 4, N = 2;
  const Outcome ref = run(make_schedule("1f1b", {1, M, N}));
  struct Case { const char* name; ScheduleParams p; };
  const Case cases[] = {
      {"zb-v", {2, M, N}},          {"zb-v", {2, 2, 4}},  // handcrafted order; list-scheduled (M < 2P-1)
      {"v-half", {2, M, N}},        {"v-min", {2, M, N}},
      {"dualpipev", {2, M, N}},     {"interleaved-zb", {2, M, N, 2}},
      {"looped-bfs", {2, M, N, 2}}, {"looped-bfs", {4, M, N, 1}},
  };
  for (const Case& c : cases) {
    Schedule s = make_schedule(c.name, c.p);
    if (s.spec.microbatches != M) {
      expect_bitwise_equal(run(make_schedule("1f1b", {1, s.spec.microbatches, s.spec.steps})), run(s),
                           fmt::format("{} M={}", c.name, s.spec.microbatches));
      continue;
    }
    expect_bitwise_equal(ref, run(s), fmt::format("{} P={} v={}", c.name, s.spec.devices, s.spec.virtual_stages));
  }
}

TEST(NewSchedulesRuntime, OverlappedActionsRunAsForwardThenBackward) {
  // The CPU executor does not overlap: an FB is recorded as its F, then its B.
  Schedule s = make_schedule("dualpipev", {2, 4, 1});
  Outcome o = run(s);
  size_t fb = 0;
  for (const auto& prog : s.programs)
    for (const Action& a : prog) fb += a.kind == ActionKind::FB;
  ASSERT_GT(fb, 0u);
  EXPECT_EQ(o.result.actions.size(), s.num_actions() + fb);
  for (const ActionRecord& r : o.result.actions) EXPECT_NE(r.action.kind, ActionKind::FB);
}

TEST(NewSchedulesRuntime, PaciVRecordsTheVersionsOfTheIr) {
  for (int a : {1, 2, 4}) {
    Schedule s = make_schedule("paci-v", {2, 4, 3, std::nullopt, a});
    Analysis an = analyze(s);
    Outcome o = run(s);
    for (int st = 0; st < s.stages(); ++st) {
      for (int m = 0; m < s.spec.total_microbatches(); ++m) {
        ASSERT_EQ(o.result.v_fwd[st][m], an.mb[st][m].v_fwd) << "a=" << a << " stage " << st << " mb " << m;
        ASSERT_EQ(o.result.v_bwd[st][m], an.mb[st][m].v_bwd) << "a=" << a << " stage " << st << " mb " << m;
      }
      EXPECT_EQ(o.result.memory[st].peak_slots_in_use, an.stages[st].inflight_peak) << "stage " << st;
    }
  }
  // Drift is real: with a < M paci-v is not the synchronous run.
  EXPECT_NE(run(make_schedule("paci-v", {2, 4, 3, std::nullopt, 1})).result.mb_loss.back(),
            run(make_schedule("1f1b", {1, 4, 3})).result.mb_loss.back());
}

TEST(NewSchedulesRuntime, TiedEmbeddingsOnOneDeviceFollowAFlushAndRefuseOtherwise) {
  GptConfig tied = small_model();
  tied.tied_embeddings = true;
  // zb-v puts stages 0 and 3 on device 0; its flush updates both after their backwards.
  Outcome one = run(make_schedule("1f1b", {1, 4, 2}), tied);
  Outcome v = run(make_schedule("zb-v", {2, 4, 2}), tied);
  ASSERT_EQ(v.weights.at("wte"), v.weights.at("lm_head"));
  expect_bitwise_equal(one, v, "tied zb-v P=2");
  try {
    run(make_schedule("paci-v", {2, 4, 2, std::nullopt, 2}), tied);
    FAIL() << "tied paci-v ran";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("updates them apart"));
    EXPECT_THAT(e.what(), HasSubstr("without --tied"));
  }
}

}  // namespace
}  // namespace paci

namespace paci {
namespace {

TEST(NewSchedulesP2pOrder, LoopedPlacementsKeepEachPairInOrderVPlacementsDoNot) {
  // A transport without tags (NCCL, exec/cuda) needs each device pair's messages received in
  // the order they are sent. The looped placements keep it; on a V, device 0 sends device 1
  // both stage 0's activations and stage 2P-1's gradients, whose orders differ, so the NCCL
  // transport refuses V schedules with that line (threads and MPI match messages by tag).
  for (const char* name : {"interleaved-zb", "looped-bfs"})
    EXPECT_FALSE(p2p_order_mismatch(make_schedule(name, {4, 8, 2, 2}))) << name;
  for (const char* name : {"zb-v", "v-half", "v-min", "dualpipev", "paci-v"}) {
    auto why = p2p_order_mismatch(make_schedule(name, {4, 8, 2}));
    ASSERT_TRUE(why) << name;
    EXPECT_THAT(*why, HasSubstr("a transport without tags (NCCL) needs both in the same order")) << name;
    if (std::string(name) != "paci-v")  // paci-v's first mismatch is on another pair
      EXPECT_THAT(*why, HasSubstr("device 0 sends to device 1 first the activation 0->1")) << name;
  }
}

}  // namespace
}  // namespace paci
