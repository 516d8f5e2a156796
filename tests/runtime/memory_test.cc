// Measured memory: the allocator counter of the runtime (exec/model/metered_backend.h) against
// a count made by hand for a small model, and against the executor's own byte accounting.
#include <gtest/gtest.h>

#include "exec/model/cpu_backend.h"
#include "exec/model/metered_backend.h"
#include "exec/runtime/runtime.h"
#include "exec/runtime/shard_batches.h"
#include "schedules/registry.h"
#include "schedules/source.h"

namespace paci {
namespace {

// Every size a multiple of 16 floats, so the 64-byte alignment of the stage's regions adds
// nothing and the hand count below is exact.
GptConfig hand_model() {
  GptConfig c;
  c.vocab_size = c.padded_vocab = 32;
  c.seq_len = 16;
  c.layers = 1;
  c.channels = 16;
  c.heads = 2;
  return c;
}

TEST(MemoryMeter, LiveAndPeakFollowAllocations) {
  CpuBackend cpu;
  MemoryMeter stage, device;
  MeteredBackend be(cpu, &stage, &device);
  void* a = be.alloc(1000);
  void* b = be.alloc(24);
  EXPECT_EQ(stage.live(), 1024u);
  be.free(a);
  void* c = be.alloc(500);
  EXPECT_EQ(stage.live(), 524u);
  EXPECT_EQ(stage.peak(), 1024u);
  EXPECT_EQ(device.peak(), 1024u);
  be.free(b);
  be.free(c);
  be.free(nullptr);
  EXPECT_EQ(stage.live(), 0u);
  EXPECT_EQ(device.live(), 0u);
}

TEST(MeasuredMemory, AllocatorPeakEqualsAHandCount) {
  RunConfig cfg;
  cfg.model = hand_model();
  const int B = 1, T = 16, N = B * T, C = 16, V = 32, NH = 2;
  SyntheticBatches data(B, T, V, 3);
  const Schedule s = make_schedule("gpipe", {1, 2, 1});  // one stage, 2 micro-batches in flight
  PipelineRuntime rt(s, cfg, data);
  const RunResult r = rt.run();
  ASSERT_EQ(r.memory.size(), 1u);

  // Parameters (untied): wte V·C, wpe T·C, one block 12C² + 13C, final LayerNorm 2C, head V·C.
  const size_t params = V * C + T * C + (12 * C * C + 13 * C) + 2 * C + V * C;
  EXPECT_EQ(params, 4592u);
  // One activation slot, in floats: the stage input N·C; the attention half (ln1 N·C, its
  // mean and rstd 2N, qkv 3N·C, attention output N·C, probabilities B·NH·T², residual N·C);
  // the MLP half (ln2 N·C + 2N, fc 4N·C, gelu 4N·C, residual N·C); the head (lnf N·C + 2N,
  // probabilities N·V, losses N); the gradients (two stream buffers 2N·C, dres1 N·C, dfch
  // 4N·C, dln2 N·C, dqkv 3N·C, dln1 N·C, dlnf N·C). Then N tokens and N targets (ints).
  const size_t slot_floats = N * C + (N * C + 2 * N + 3 * N * C + N * C + B * NH * T * T + N * C) +
                             (N * C + 2 * N + 4 * N * C + 4 * N * C + N * C) + (N * C + 2 * N + N * V + N) +
                             (2 * N * C + N * C + 4 * N * C + N * C + 3 * N * C + N * C + N * C);
  EXPECT_EQ(slot_floats, 9072u);
  const size_t slot_bytes = 4 * slot_floats + 2 * N * sizeof(int);
  // Scratch: the MLP backward's N·C + 4N·C; four message buffers of B·T·C floats.
  const size_t scratch = 4 * (N * C + 4 * N * C), messages = 4 * 4 * (B * T * C);
  // Weights, gradients, AdamW m and v: four copies of the parameters.
  const size_t hand = 4 * 4 * params + 2 * slot_bytes + scratch + messages;
  EXPECT_EQ(hand, 155520u);
  EXPECT_EQ(r.memory[0].allocated_peak, hand);
  EXPECT_EQ(r.memory[0].device_allocated_peak, hand);
  EXPECT_EQ(r.memory[0].peak_bytes(), hand);  // the executor's own accounting agrees
}

// With weight stashing (PipeDream) copies come and go during the run: the allocator's peak is
// the executor's accounting at its measured peak of copies, on every stage.
TEST(MeasuredMemory, StashedCopiesAreCounted) {
  RunConfig cfg;
  cfg.model = hand_model();
  cfg.model.layers = 2;
  SyntheticBatches data(1, 16, 32, 3);
  const Schedule s = make_schedule("pipedream", {2, 4, 2});
  PipelineRuntime rt(s, cfg, data);
  const RunResult r = rt.run();
  ASSERT_EQ(r.memory.size(), 2u);
  int copies = 0;
  for (const StageMemory& m : r.memory) {
    EXPECT_EQ(m.allocated_peak, m.peak_bytes());
    copies += m.peak_stashed_copies;
  }
  EXPECT_GT(copies, 0);  // the case stashes at all
}

// Steady state allocates nothing per update: the allocator calls of every stage are the same
// whether the run has 2 steps or 6 (weights, gradients, AdamW state, slots, scratch and
// buffers once; stashed and forward-time weight copies reused, snapshots only where an
// evaluation, a checkpoint or an export asks for one).
TEST(MeasuredMemory, NoAllocationPerUpdate) {
  struct Case {
    const char* name;
    WeightPolicy backward;
    int accum;
  };
  for (const Case& c : {Case{"1f1b", WeightPolicy::kCurrent, 0}, Case{"pipedream", WeightPolicy::kStash, 0},
                        Case{"pipedream-2bw", WeightPolicy::kDoubleBuffer, 0},
                        Case{"paci", WeightPolicy::kForward, 2}, Case{"paci", WeightPolicy::kRecompute, 2},
                        Case{"paci-v", WeightPolicy::kCurrent, 2}}) {
    std::vector<size_t> calls;
    for (int steps : {2, 6}) {
      RunConfig cfg;
      cfg.model = hand_model();
      cfg.model.layers = 2;
      SyntheticBatches data(1, 16, 32, 3);
      ScheduleParams p{2, 4, steps};
      if (c.accum) p.accum = c.accum;
      Schedule s = make_schedule(c.name, p);
      if (c.backward == WeightPolicy::kForward || c.backward == WeightPolicy::kRecompute)
        s = with_backward(s, c.backward);
      PipelineRuntime rt(s, cfg, data);
      const RunResult r = rt.run();
      size_t n = 0;
      for (const StageMemory& m : r.memory) n += m.allocations;
      calls.push_back(n);
    }
    EXPECT_GT(calls[0], 0u) << c.name;
    EXPECT_EQ(calls[0], calls[1]) << c.name << " " << policy_name(c.backward) << ": allocator calls over 2 and 6 steps";
  }
}

}  // namespace
}  // namespace paci
