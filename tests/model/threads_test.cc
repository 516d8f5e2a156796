// Results must not depend on how many threads the CPU backend uses, whichever BLAS kernel
// runs: GEMMs are cut into a fixed grid of tiles and K slices, each one single-threaded BLAS
// call (cpu_kernels.h), and the other kernels split only over independent rows or heads.
// Checked bitwise on GEMMs of every transpose with edge tiles in M, N and K, and on whole
// models whose shapes hit those cases: GPT-2's vocabulary (K = 50257 in the head's
// backward), an odd-sized model, and a long context. (OpenBLAS's own threading failed this
// with its Haswell and Prescott kernels; run by hand under OPENBLAS_CORETYPE=... to check
// another kernel.)
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "exec/model/cpu_backend.h"
#include "exec/model/cpu_kernels.h"
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

TEST(Threads, GemmBitsDoNotDependOnTheThreadCount) {
  CpuBackend init;  // sets OpenBLAS to one thread, as every backend does
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  struct Shape { int M, N, K; };
  // Edge tiles in every dimension (tiles 512 x 1024, K slices 256), and one tile only.
  const Shape shapes[] = {{700, 1100, 600}, {513, 1025, 257}, {1, 2000, 300}, {64, 64, 64}};
  for (const Shape& sh : shapes)
    for (CBLAS_TRANSPOSE ta : {CblasNoTrans, CblasTrans})
      for (CBLAS_TRANSPOSE tb : {CblasNoTrans, CblasTrans}) {
        std::vector<float> A(static_cast<size_t>(sh.M) * sh.K), B(static_cast<size_t>(sh.K) * sh.N);
        for (auto& x : A) x = u(rng);
        for (auto& x : B) x = u(rng);
        const int lda = ta == CblasNoTrans ? sh.K : sh.M, ldb = tb == CblasNoTrans ? sh.N : sh.K;
        std::vector<float> C0(static_cast<size_t>(sh.M) * sh.N);
        for (auto& x : C0) x = u(rng);
        std::vector<float> one = C0;
        cpu::gemm(ta, tb, sh.M, sh.N, sh.K, 0.5f, A.data(), lda, B.data(), ldb, 1.0f, one.data(),
                  sh.N, 1);
        for (int threads : {2, 3, 5}) {
          std::vector<float> more = C0;
          cpu::gemm(ta, tb, sh.M, sh.N, sh.K, 0.5f, A.data(), lda, B.data(), ldb, 1.0f,
                    more.data(), sh.N, threads);
          EXPECT_EQ(0, std::memcmp(one.data(), more.data(), one.size() * sizeof(float)))
              << sh.M << "x" << sh.N << "x" << sh.K << " ta=" << (ta == CblasTrans)
              << " tb=" << (tb == CblasTrans) << ", " << threads << " threads";
        }
      }
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
