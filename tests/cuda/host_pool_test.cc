// The CUDA backend's memory-reuse bookkeeping (exec/cuda/host_pool.h), on the CPU.
#include "exec/cuda/host_pool.h"

#include <gtest/gtest.h>

#include <set>

namespace paci::cuda {
namespace {

void* P(uintptr_t v) { return reinterpret_cast<void*>(v); }

TEST(BlockPool, MissThenReuseSameSizeOnly) {
  BlockPool pool;
  EXPECT_EQ(pool.take(256), nullptr);
  EXPECT_EQ(pool.misses(), 1u);
  pool.give(P(0x1000), 256);
  pool.give(P(0x2000), 512);
  EXPECT_EQ(pool.cached_bytes(), 768u);
  EXPECT_EQ(pool.cached_blocks(), 2u);
  EXPECT_EQ(pool.take(1024), nullptr);  // no block of that size: never a bigger or smaller one
  EXPECT_EQ(pool.take(512), P(0x2000));
  EXPECT_EQ(pool.take(512), nullptr);
  EXPECT_EQ(pool.take(256), P(0x1000));
  EXPECT_EQ(pool.cached_bytes(), 0u);
  EXPECT_EQ(pool.cached_blocks(), 0u);
  EXPECT_EQ(pool.hits(), 2u);
  EXPECT_EQ(pool.misses(), 3u);
}

TEST(BlockPool, MostRecentlyFreedFirstAndNullIgnored) {
  BlockPool pool;
  pool.give(nullptr, 256);
  EXPECT_EQ(pool.cached_blocks(), 0u);
  pool.give(P(0x1000), 256);
  pool.give(P(0x2000), 256);
  EXPECT_EQ(pool.take(256), P(0x2000));
  EXPECT_EQ(pool.take(256), P(0x1000));
}

// The steady state of a stage: every step frees and reallocates the same sizes; after the
// first step every alloc is a hit and the cached bytes never exceed one step's frees.
TEST(BlockPool, SteadyStateHasNoMisses) {
  BlockPool pool;
  const size_t sizes[] = {256 * 1000, 256 * 7, 256 * 1000, 256 * 33};
  uintptr_t next = 0x10000;
  std::vector<std::pair<void*, size_t>> live;
  for (int step = 0; step < 10; ++step) {
    for (size_t s : sizes) {
      void* p = pool.take(s);
      if (!p) p = P(next += 0x100000);
      live.emplace_back(p, s);
    }
    for (auto& [p, s] : live) pool.give(p, s);
    live.clear();
  }
  EXPECT_EQ(pool.misses(), 4u);
  EXPECT_EQ(pool.hits(), 36u);
  EXPECT_EQ(pool.cached_blocks(), 4u);
}

TEST(BlockPool, ReleaseReturnsEveryBlockOnce) {
  BlockPool pool;
  pool.give(P(0x1000), 256);
  pool.give(P(0x2000), 256);
  pool.give(P(0x3000), 4096);
  auto all = pool.release();
  ASSERT_EQ(all.size(), 3u);
  std::set<void*> seen;
  size_t bytes = 0;
  for (auto& [p, s] : all) {
    seen.insert(p);
    bytes += s;
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(bytes, 256u + 256u + 4096u);
  EXPECT_EQ(pool.cached_bytes(), 0u);
  EXPECT_EQ(pool.take(256), nullptr);
  EXPECT_TRUE(pool.release().empty());
}

TEST(StagingRing, RoundRobinWaitsOnlyOnReuse) {
  StagingRing ring(3, 1 << 20);
  for (int k = 0; k < 7; ++k) {
    StagingStep s = ring.plan(100);
    EXPECT_EQ(s.slot, k % 3);
    EXPECT_EQ(s.wait, k >= 3) << k;  // a slot's previous copy is waited for before refilling
    EXPECT_EQ(s.grow_to, k < 3 ? StagingRing::kGranule : 0u) << k;
  }
}

TEST(StagingRing, GrowsAtLeastDoubleAndCaps) {
  StagingRing ring(1, 64 * 1024);
  EXPECT_EQ(ring.plan(5000).grow_to, 8192u);        // granule round-up
  EXPECT_EQ(ring.plan(8192).grow_to, 0u);           // fits
  EXPECT_EQ(ring.plan(9000).grow_to, 16384u);       // at least double
  EXPECT_EQ(ring.plan(40000).grow_to, 40960u);
  EXPECT_EQ(ring.plan(60000).grow_to, 64u * 1024);  // double would pass max_bytes: capped
  EXPECT_EQ(ring.capacity(0), 64u * 1024);
  EXPECT_EQ(ring.held_bytes(), 64u * 1024);
}

TEST(StagingRing, WhatGoesThroughTheRing) {
  StagingRing ring(4, 1024);
  EXPECT_FALSE(ring.stages(0));
  EXPECT_TRUE(ring.stages(1));
  EXPECT_TRUE(ring.stages(1024));
  EXPECT_FALSE(ring.stages(1025));  // the parameters at start-up: a direct copy
  StagingRing one(0, 1024);          // at least one slot
  EXPECT_EQ(one.slots(), 1);
}

}  // namespace
}  // namespace paci::cuda
