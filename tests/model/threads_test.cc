// Results must not depend on how many threads the CPU backend uses: OpenBLAS splits long
// reductions (K > ~320) differently with 2 threads than with 1, which the backend avoids by
// slicing K; its own kernels split only over independent rows. Checked bitwise on shapes
// that hit those cases: GPT-2's vocabulary (K = 50257 in the head's backward), an odd-sized
// model, and a long context.
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "exec/model/cpu_backend.h"
#include "exec/model/partition.h"
#include "exec/model/stage_model.h"

namespace paci {
namespace {

struct Grads {
  float loss = 0;
  std::vector<float> g;
};

Grads forward_backward(const GptConfig& cfg, int B, int T, int threads) {
  CpuBackendOptions o;
  o.blas_threads = threads;
  CpuBackend be(o);
  StageModel m(be, cfg, partition_from_layers(cfg, {cfg.layers})[0], B, T, 1, 99);
  std::mt19937 rng(5);
  std::vector<int> tok(B * T), tgt(B * T);
  for (auto& t : tok) t = static_cast<int>(rng() % cfg.vocab_size);
  for (auto& t : tgt) t = static_cast<int>(rng() % cfg.vocab_size);
  Grads out;
  out.loss = m.forward(0, m.params(), tok.data(), nullptr, tgt.data(), nullptr);
  m.backward(0, m.params(), nullptr, nullptr, 1);
  out.g.assign(m.grads(), m.grads() + m.param_count());
  return out;
}

TEST(Threads, OneTwoAndThreeThreadsGiveTheSameBits) {
  GptConfig odd;
  odd.vocab_size = 50001, odd.padded_vocab = 50016, odd.seq_len = 77, odd.layers = 2, odd.channels = 72, odd.heads = 6;
  GptConfig long_context;
  long_context.vocab_size = 1000, long_context.padded_vocab = 1024, long_context.seq_len = 512;
  long_context.layers = 1, long_context.channels = 64, long_context.heads = 4;
  struct Case { const char* name; GptConfig cfg; int B, T; };
  const Case cases[] = {{"tiny", preset("tiny"), 4, 64}, {"odd", odd, 3, 77}, {"long context", long_context, 1, 512}};
  for (const Case& c : cases) {
    Grads one = forward_backward(c.cfg, c.B, c.T, 1);
    for (int threads : {2, 3}) {
      Grads more = forward_backward(c.cfg, c.B, c.T, threads);
      EXPECT_EQ(one.loss, more.loss) << c.name << ", " << threads << " threads";
      ASSERT_EQ(one.g.size(), more.g.size());
      EXPECT_EQ(0, std::memcmp(one.g.data(), more.g.data(), one.g.size() * sizeof(float)))
          << c.name << ": gradients differ with " << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace paci
