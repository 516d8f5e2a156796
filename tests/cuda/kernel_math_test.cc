// The device math of kernels.cu (kernel_math.h, compiled here by the host compiler) against the
// CPU backend's reference: head permute indices, the online softmax of the cross-entropy kernel
// replayed with its thread/warp/block structure, GELU, AdamW, the sorted embedding backward.
#include "exec/cuda/kernel_math.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "exec/cuda/launch_config.h"
#include "exec/model/cpu_kernels.h"

namespace paci {
namespace cuda {
namespace {

TEST(KernelMath, HeadIndexIsTheHeadMajorLayout) {
  const int B = 2, T = 5, C = 12, NH = 3, hs = C / NH;
  const int64_t stride = 3 * C;  // q of a qkv buffer
  std::vector<int> seen(static_cast<size_t>(B) * T * stride, 0);
  for (unsigned idx = 0; idx < static_cast<unsigned>(B * T * C); ++idx) {
    const auto x = head_index<unsigned>(idx, hs, T, NH);
    const auto y = head_index<size_t>(idx, hs, T, NH);
    EXPECT_EQ(x.b, y.b);
    EXPECT_EQ(x.t, y.t);
    // the definition: head-major element ((b·NH + h)·T + t)·hs + i
    EXPECT_EQ(((x.b * NH + x.h) * T + x.t) * hs + x.i, idx);
    const size_t off = token_major_offset(x, static_cast<unsigned>(hs), static_cast<unsigned>(T), stride);
    EXPECT_EQ(off, (static_cast<size_t>(x.b) * T + x.t) * stride + x.h * hs + x.i);
    ++seen[off];
  }
  // a bijection onto the q part of every row ([0, C) of each 3C row)
  for (size_t r = 0; r < static_cast<size_t>(B) * T; ++r) {
    for (int c = 0; c < 3 * C; ++c) EXPECT_EQ(seen[r * stride + c], c < C ? 1 : 0);
  }
}

// Replays softmax_xent_forward_kernel's reduction: thread k of `threads` folds elements k,
// k+threads, …; warps merge by butterfly (__shfl_xor_sync 16, 8, 4, 2, 1); thread 0 merges the
// warps in order. Returns (max, sum).
std::pair<float, float> block_softmax_stats(const std::vector<float>& z, int threads) {
  std::vector<float> m(threads, -INFINITY), s(threads, 0.f);
  for (int k = 0; k < threads; ++k) {
    for (size_t i = k; i < z.size(); i += threads) online_update(m[k], s[k], z[i]);
  }
  for (int w = 0; w < threads / 32; ++w) {
    for (int o = 16; o > 0; o >>= 1) {
      std::vector<float> m2(32), s2(32);
      for (int l = 0; l < 32; ++l) {
        m2[l] = m[w * 32 + (l ^ o)];
        s2[l] = s[w * 32 + (l ^ o)];
      }
      for (int l = 0; l < 32; ++l) online_merge(m[w * 32 + l], s[w * 32 + l], m2[l], s2[l]);
    }
  }
  float M = m[0], S = s[0];
  for (int w = 1; w < threads / 32; ++w) online_merge(M, S, m[w * 32], s[w * 32]);
  return {M, S};
}

TEST(KernelMath, OnlineSoftmaxMatchesTheCpuLoss) {
  std::mt19937 gen(3);
  for (int V : {1, 7, 100, 1001, 50257}) {
    for (float scale : {1.f, 30.f}) {
      std::normal_distribution<float> d(0.f, scale);
      std::vector<float> z(V);
      for (float& x : z) x = d(gen);
      if (V > 10) z[3] = -INFINITY;  // masked logits must not poison the sums
      const int y = V / 2;
      const int threads = static_cast<int>(block_per_row_config(1, V).block.x);
      const auto ms = block_softmax_stats(z, threads);
      EXPECT_EQ(ms.first, *std::max_element(z.begin(), z.end()));
      const float loss_kernel = logf(ms.second) + ms.first - z[y];
      float loss_cpu = 0.f;
      std::vector<float> probs(V);
      const int target = y;
      cpu::softmax_xent_forward(&loss_cpu, probs.data(), z.data(), &target, 1, V);
      EXPECT_NEAR(loss_kernel, loss_cpu, 2e-6 * std::max(1.f, std::fabs(loss_cpu))) << V;
      // the probabilities the kernel writes: expf(z − M) · (1/S)
      const float inv = 1.f / ms.second;
      double worst = 0;
      for (int i = 0; i < V; ++i) {
        const float p = expf(z[i] - ms.first) * inv;
        worst = std::max(worst, std::fabs(static_cast<double>(p) - probs[i]));
      }
      EXPECT_LT(worst, 1e-6) << V;
    }
  }
}

TEST(KernelMath, OnlineSoftmaxEdgeCases) {
  // all equal, huge magnitudes (no overflow), a single finite value among -inf
  EXPECT_FLOAT_EQ(block_softmax_stats(std::vector<float>(1000, 5.f), 128).second, 1000.f);
  const auto big = block_softmax_stats({1e30f, -1e30f, 1e30f}, 32);
  EXPECT_EQ(big.first, 1e30f);
  EXPECT_FLOAT_EQ(big.second, 2.f);
  std::vector<float> z(300, -INFINITY);
  z[123] = 0.5f;
  const auto one = block_softmax_stats(z, 64);
  EXPECT_EQ(one.first, 0.5f);
  EXPECT_EQ(one.second, 1.f);
}

TEST(KernelMath, GeluMatchesCpu) {
  std::vector<float> x(2001), ref(2001), din(2001, 0.f), dref(2001, 0.f), ones(2001, 1.f);
  for (int i = 0; i < 2001; ++i) x[i] = -10.f + 0.01f * i;
  cpu::gelu_forward(ref.data(), x.data(), x.size());
  cpu::gelu_backward(dref.data(), x.data(), ones.data(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(gelu(x[i]), ref[i], 1e-6f * std::max(1.f, std::fabs(ref[i])));
    EXPECT_NEAR(gelu_grad(x[i]), dref[i], 1e-6f * std::max(1.f, std::fabs(dref[i])));
  }
}

// An AdamW state of n values from `seed`: params ~ N(0, 1), grads 0.1·N, m 0.01·N, v 1e-3·|N|.
struct AdamwState {
  std::vector<float> p, g, m, v;
};
AdamwState random_adamw_state(unsigned seed, size_t n) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  AdamwState s{std::vector<float>(n), std::vector<float>(n), std::vector<float>(n),
               std::vector<float>(n)};
  for (size_t i = 0; i < n; ++i) {
    s.p[i] = d(gen);
    s.g[i] = 0.1f * d(gen);
    s.m[i] = 0.01f * d(gen);
    s.v[i] = 1e-3f * std::fabs(d(gen));
  }
  return s;
}

TEST(KernelMath, AdamwMatchesCpuBitwise) {
  const size_t n = 1000;
  AdamwState s = random_adamw_state(5, n);
  std::vector<float> &p = s.p, &g = s.g, &m = s.m, &v = s.v;
  auto p2 = p, m2 = m, v2 = v, g2 = g;
  const double b1 = 0.9, b2 = 0.95, b1p = std::pow(b1, 3), b2p = std::pow(b2, 3);
  cpu::adamw_update(p.data(), g2.data(), m.data(), v.data(), n, 3e-4, b1, b2, b1p, b2p, 1e-8, 0.1);
  const float c1 = static_cast<float>(1.0 / (1.0 - b1p)), c2 = static_cast<float>(1.0 / (1.0 - b2p));
  for (size_t i = 0; i < n; ++i) {
    adamw_step(p2[i], g[i], m2[i], v2[i], 3e-4f, 0.9f, 0.95f, c1, c2, 1e-8f, 0.1f);
  }
  EXPECT_EQ(std::memcmp(p.data(), p2.data(), n * 4), 0);
  EXPECT_EQ(std::memcmp(m.data(), m2.data(), n * 4), 0);
  EXPECT_EQ(std::memcmp(v.data(), v2.data(), n * 4), 0);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(g2[i], 0.f) << "gradient " << i << " not consumed";
}

// The CPU update is compiled for SSE and for AVX2 (picked at run time). Both bodies, over an
// n that leaves a scalar tail, must give the scalar reference's bits: the operations are
// correctly rounded and none is fused.
TEST(KernelMath, AdamwSseAndAvx2BodiesAgreeBitwise) {
  const size_t n = 1003;
  const AdamwState s = random_adamw_state(11, n);
  const std::vector<float> &p = s.p, &g = s.g, &m = s.m, &v = s.v;
  const cpu::AdamwCoeffs<float> c = cpu::adamw_coeffs<float>(3e-4, 0.9, 0.999, 0.9, 0.999, 1e-8, 0.1);
  auto ref_p = p, ref_m = m, ref_v = v;
  for (size_t i = 0; i < n; ++i) {
    adamw_step(ref_p[i], g[i], ref_m[i], ref_v[i], c.lr, c.b1, c.b2, c.c1, c.c2, c.eps, c.wd);
  }
  auto check = [&](const char* body, auto fn) {
    auto pp = p, gg = g, mm = m, vv = v;
    fn(pp.data(), gg.data(), mm.data(), vv.data(), size_t{0}, n, c);
    EXPECT_EQ(std::memcmp(pp.data(), ref_p.data(), n * 4), 0) << body;
    EXPECT_EQ(std::memcmp(mm.data(), ref_m.data(), n * 4), 0) << body;
    EXPECT_EQ(std::memcmp(vv.data(), ref_v.data(), n * 4), 0) << body;
  };
  check("sse", cpu::adamw_elements_sse);
#if defined(__x86_64__)
  if (!cpu::have_avx2()) GTEST_SKIP() << "no AVX2 on this CPU: only the SSE body was checked";
  check("avx2", cpu::adamw_elements_avx2);
#endif
}

TEST(KernelMath, SortedEmbeddingBackwardIsTheCpuOrder) {
  const int B = 3, T = 40, C = 5, V = 17, N = B * T;
  std::mt19937 gen(9);
  std::uniform_int_distribution<int> tok(0, V - 1);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<int> tokens(N);
  for (int& t : tokens) t = tok(gen);
  std::vector<float> dout(static_cast<size_t>(N) * C), wte0(static_cast<size_t>(V) * C);
  for (float& x : dout) x = d(gen);
  for (float& x : wte0) x = d(gen);
  // what CUB's stable radix sort produces: positions ordered by token, ascending within one
  std::vector<int> rows(N);
  std::iota(rows.begin(), rows.end(), 0);
  std::stable_sort(rows.begin(), rows.end(), [&](int a, int b) { return tokens[a] < tokens[b]; });
  std::vector<unsigned> keys(N);
  for (int p = 0; p < N; ++p) keys[p] = static_cast<unsigned>(tokens[rows[p]]);
  auto got = wte0;
  for (int p = 0; p < N; ++p) {  // blockIdx.x
    if (!is_run_start(keys.data(), p)) continue;
    for (int c = 0; c < C; ++c) {  // the column threads
      float* e = got.data() + static_cast<size_t>(keys[p]) * C + c;
      *e = sum_run(*e, keys.data(), rows.data(), dout.data(), p, N, C, c);
    }
  }
  auto ref = wte0;
  std::vector<float> dwpe(static_cast<size_t>(T) * C, 0.f);
  cpu::embedding_backward(ref.data(), dwpe.data(), dout.data(), tokens.data(), B, T, C);
  EXPECT_EQ(std::memcmp(got.data(), ref.data(), ref.size() * 4), 0);  // bit for bit
}

TEST(KernelMath, SortKeyBits) {
  EXPECT_EQ(sort_key_bits(1), 1);
  EXPECT_EQ(sort_key_bits(2), 1);
  EXPECT_EQ(sort_key_bits(3), 2);
  EXPECT_EQ(sort_key_bits(1001), 10);
  EXPECT_EQ(sort_key_bits(1024), 10);
  EXPECT_EQ(sort_key_bits(1025), 11);
  EXPECT_EQ(sort_key_bits(50257), 16);
  EXPECT_EQ(sort_key_bits(65536), 16);
  EXPECT_EQ(sort_key_bits(65537), 17);
  for (int V : {2, 3, 17, 50257}) EXPECT_LE(static_cast<unsigned>(V - 1), (1u << sort_key_bits(V)) - 1);
}

}  // namespace
}  // namespace cuda
}  // namespace paci
