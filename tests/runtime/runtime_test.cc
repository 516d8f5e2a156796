// The runtime against the IR: synchronous schedules with P stages give bitwise the losses
// and weights of one stage; asynchronous schedules record exactly the versions the static
// analysis predicts; runs are deterministic; a stuck schedule ends with a clear error.
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "exec/data/shard.h"
#include "exec/runtime/p2p_order.h"
#include "exec/model/cpu_backend.h"
#include "exec/runtime/runtime.h"
#include "exec/runtime/shard_batches.h"
#include "tests/runtime/run_util.h"
#include "schedules/analysis.h"
#include "schedules/formats.h"
#include "schedules/registry.h"

namespace paci {
namespace {

using ::testing::HasSubstr;

using testing::expect_bitwise_equal;
using testing::kB;
using testing::kT;
using testing::Outcome;
using testing::run;
using testing::small_model;

TEST(Runtime, SynchronousSchedulesEqualOneStageBitwise) {
  const int M = 4, N = 3;
  Outcome ref = run(make_schedule("1f1b", {1, M, N}));
  for (float l : ref.result.mb_loss) ASSERT_TRUE(std::isfinite(l));
  // Training moves the loss: the last step's loss differs from the first's.
  EXPECT_NE(ref.result.batch_loss.front(), ref.result.batch_loss.back());
  for (const char* name : {"gpipe", "1f1b"})
    for (int P : {2, 4})
      expect_bitwise_equal(ref, run(make_schedule(name, {P, M, N})), fmt::format("{} P={}", name, P));
  expect_bitwise_equal(ref, run(make_schedule("gpipe", {1, M, N})), "gpipe P=1");
  // interleaved-1f1b: 2 devices x 2 chunks = 4 stages.
  expect_bitwise_equal(ref, run(make_schedule("interleaved-1f1b", {2, M, N, 2})), "interleaved P=2 v=2");
  expect_bitwise_equal(ref, run(make_schedule("interleaved-1f1b", {4, M, N, 1})), "interleaved P=4 v=1");
}

// The CPU backend posing as device memory: the runtime must stage messages through host
// buffers (as for a GPU backend with an in-process or MPI transport) and get the same bits.
class DeviceLikeCpu : public CpuBackend {
 public:
  bool host_memory() const override { return false; }
};

TEST(Runtime, MessagesStagedThroughHostMemoryGiveTheSameBits) {
  Schedule s = make_schedule("paci", {4, 4, 2, std::nullopt, 2});
  RunConfig cfg;
  cfg.model = small_model();
  cfg.seed = 7;
  SyntheticBatches a(kB, kT, cfg.model.vocab_size, 7), b(kB, kT, cfg.model.vocab_size, 7);
  RunResult direct = PipelineRuntime(s, cfg, a).run();
  cfg.make_backend = [](int) { return std::make_unique<DeviceLikeCpu>(); };
  RunResult staged = PipelineRuntime(s, cfg, b).run();
  EXPECT_EQ(direct.mb_loss, staged.mb_loss);
}

TEST(Runtime, PaciWithOneStageEqualsOneF1B) {
  expect_bitwise_equal(run(make_schedule("1f1b", {1, 4, 3})), run(make_schedule("paci", {1, 4, 3})),
                       "paci P=1");
}

TEST(Runtime, SplitBackwardScheduleTrainsLikeWholeBackward) {
  // zb-h1 runs I then W; per micro-batch this equals B bitwise (the model's own test), and
  // the gradient accumulation order per stage is micro-batch order, so weights match.
  expect_bitwise_equal(run(make_schedule("1f1b", {1, 4, 2})), run(make_schedule("zb-h1", {4, 4, 2})),
                       "zb-h1 P=4");
}

TEST(Runtime, RecordedVersionsEqualStaticAnalysis) {
  struct Case { const char* name; ScheduleParams p; };
  const Case cases[] = {
      {"paci", {4, 4, 3, std::nullopt, 2}},
      {"paci", {4, 4, 3, std::nullopt, 4}},
      {"pipedream", {4, 2, 4}},
      {"pipedream-2bw", {4, 4, 3}},
  };
  for (const Case& c : cases) {
    Schedule s = make_schedule(c.name, c.p);
    Analysis an = analyze(s);
    Outcome o = run(s);
    for (int st = 0; st < s.stages(); ++st)
      for (int m = 0; m < s.spec.total_microbatches(); ++m) {
        ASSERT_EQ(o.result.v_fwd[st][m], an.mb[st][m].v_fwd) << c.name << " stage " << st << " mb " << m;
        ASSERT_EQ(o.result.v_bwd[st][m], an.mb[st][m].v_bwd) << c.name << " stage " << st << " mb " << m;
      }
    for (int st = 0; st < s.stages(); ++st) {
      EXPECT_EQ(o.result.memory[st].peak_slots_in_use, an.stages[st].inflight_peak) << c.name;
      EXPECT_EQ(o.result.memory[st].peak_stashed_copies + 1, an.stages[st].weight_copies)
          << c.name << " stage " << st;
    }
  }
}

TEST(Runtime, AsynchronousScheduleDiffersFromSynchronous) {
  // Drift is real: paci with P = 4 and a = 2 must not equal 1F1B (the test above would
  // otherwise pass vacuously for asynchronous schedules).
  Outcome a = run(make_schedule("paci", {4, 4, 3, std::nullopt, 2}));
  Outcome b = run(make_schedule("1f1b", {4, 2, 6}));
  EXPECT_NE(a.result.mb_loss.back(), b.result.mb_loss.back());
}

TEST(Runtime, SameSeedSameBitsDifferentSeedDifferentBits) {
  Schedule s = make_schedule("paci", {2, 4, 2});
  Outcome a = run(s, 11), b = run(s, 11), c = run(s, 12);
  expect_bitwise_equal(a, b, "same seed");
  EXPECT_NE(a.result.mb_loss[0], c.result.mb_loss[0]);
}

TEST(Runtime, StuckScheduleEndsWithErrorNamingDeviceAndAction) {
  // A deadlocking order, built by hand so it skips validation.
  Schedule s = schedule_from_csv("0F0,0B0,0F1,0B1\n1F1,1B1,1F0,1B0\n", "stuck.csv");
  RunConfig cfg;
  cfg.model = small_model();
  cfg.stall_timeout = std::chrono::milliseconds(300);
  SyntheticBatches data(kB, kT, cfg.model.vocab_size, 1);
  PipelineRuntime rt(s, cfg, data);
  try {
    rt.run();
    FAIL() << "stuck run returned";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("stuck: device"));
    EXPECT_THAT(e.what(), ::testing::AnyOf(HasSubstr("(1F1) waited"), HasSubstr("(0B0) waited")));
  }
}

TEST(Runtime, TiedEmbeddingsStayIdenticalAcrossStages) {
  GptConfig tied = small_model();
  tied.tied_embeddings = true;
  Outcome one = run(make_schedule("1f1b", {1, 2, 3}), 5, tied);
  Outcome four = run(make_schedule("1f1b", {4, 2, 3}), 5, tied);
  ASSERT_EQ(four.weights.at("wte"), four.weights.at("lm_head"));
  expect_bitwise_equal(one, four, "tied P=4");
}

}  // namespace
}  // namespace paci

namespace paci {
namespace {

TEST(ShardBatches, WindowsAreAPureFunctionOfTheMicrobatchId) {
  const std::string path = ::testing::TempDir() + "/s_train.bin";
  std::vector<int> tokens(1000);
  for (int i = 0; i < 1000; ++i) tokens[i] = i;
  write_token_shard(path, tokens);
  ShardBatches a(path, 2, 8), b(path, 2, 8);
  std::vector<int> x(16), y(16), x2(16), y2(16);
  a.get(5, x.data(), y.data());
  EXPECT_EQ(x[0], 5 * 16);  // window 5 starts at token 80
  for (int i = 0; i < 16; ++i) EXPECT_EQ(y[i], x[i] + 1);  // targets are the next tokens
  b.get(3, x2.data(), y2.data());
  b.get(5, x2.data(), y2.data());
  EXPECT_EQ(x, x2);  // order of requests does not matter
  a.get(1000, x.data(), y.data());  // wraps around the usable length
  EXPECT_EQ(x[0], (1000 * 16) % (999 - 16 + 1));
  EXPECT_THROW(ShardBatches(path, 100, 100), std::invalid_argument);
  EXPECT_THROW(ShardBatches(::testing::TempDir() + "/missing.bin", 1, 1), ShardError);
}

}  // namespace
}  // namespace paci

namespace paci {
namespace {

TEST(P2pOrder, LibrarySchedulesKeepEachPairInOrder) {
  for (const char* name : {"gpipe", "1f1b", "paci", "zb-h1", "pipedream", "pipedream-2bw"})
    EXPECT_FALSE(p2p_order_mismatch(make_schedule(name, {4, 8, 2}))) << name;
  EXPECT_FALSE(p2p_order_mismatch(make_schedule("interleaved-1f1b", {4, 8, 2, 2})));
  // Receiving micro-batch 1 before 0 breaks the order of sends 0 then 1.
  Schedule swapped = schedule_from_csv("0F0,0F1,0B0,0B1\n1F1,1F0,1B0,1B1\n", "x.csv");
  auto why = p2p_order_mismatch(swapped);
  ASSERT_TRUE(why);
  EXPECT_THAT(*why, HasSubstr("device 0 sends to device 1 first the activation 0->1 mb 0"));
}

}  // namespace
}  // namespace paci
