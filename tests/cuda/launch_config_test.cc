#include "exec/cuda/launch_config.h"

#include <gtest/gtest.h>

#include <vector>

namespace paci {
namespace cuda {
namespace {

TEST(LaunchConfig, ElementwiseCoversEveryElement) {
  for (size_t n : {1ul, 3ul, 255ul, 256ul, 257ul, 1000003ul, 25165824ul}) {
    for (int vec : {1, 4}) {
      const LaunchConfig lc = elementwise_config(n, vec);
      EXPECT_EQ(launch_error(lc), "") << n;
      EXPECT_EQ(lc.block.x, kElementwiseThreads);
      // one thread per `vec` elements; the grid-stride loop needs no more than this
      EXPECT_GE(lc.threads() * vec, static_cast<int64_t>(n));
      EXPECT_LT((lc.grid.x - 1) * lc.block.x * vec, static_cast<int64_t>(n));  // no idle block
    }
  }
}

TEST(LaunchConfig, ElementwiseEmptyAndHuge) {
  EXPECT_EQ(elementwise_config(0).grid.x, 0);  // the launcher skips it
  // 2^40 elements: the grid is capped, the grid-stride loop covers the rest
  const LaunchConfig lc = elementwise_config(size_t{1} << 40);
  EXPECT_EQ(lc.grid.x, kMaxGridX);
  EXPECT_EQ(launch_error(lc), "");
}

TEST(LaunchConfig, WarpPerRowAssignsEachRowToOneWarp) {
  for (int64_t rows : {1, 3, 4, 5, 8191, 8192, 98304}) {
    const LaunchConfig lc = warp_per_row_config(rows);
    ASSERT_EQ(launch_error(lc), "");
    ASSERT_EQ(lc.block.x % kWarpSize, 0);
    // The kernels compute row = blockIdx.x * warps_per_block + threadIdx.x / 32.
    const int64_t wpb = lc.block.x / kWarpSize;
    std::vector<int> seen(rows, 0);
    for (int64_t b = 0; b < lc.grid.x; ++b) {
      for (int64_t w = 0; w < wpb; ++w) {
        const int64_t row = b * wpb + w;
        if (row < rows) ++seen[row];
      }
    }
    for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(seen[r], 1) << rows << " row " << r;
    EXPECT_LT((lc.grid.x - 1) * wpb, rows);
  }
}

TEST(LaunchConfig, BlockPerRowThreads) {
  for (int cols : {1, 7, 31, 32, 100, 1001, 8191, 50257, 50304, 1 << 20}) {
    const LaunchConfig lc = block_per_row_config(4096, cols);
    EXPECT_EQ(launch_error(lc), "") << cols;
    EXPECT_EQ(lc.block.x % kWarpSize, 0);
    EXPECT_GE(lc.block.x, kWarpSize);
    EXPECT_LE(lc.block.x, kMaxThreadsPerBlock);
    EXPECT_EQ(lc.grid.x, 4096);
    EXPECT_EQ(lc.shared_bytes, static_cast<size_t>(lc.block.x / kWarpSize) * 2 * sizeof(float));
  }
  EXPECT_EQ(block_per_row_config(1, 50257).block.x, 1024);  // GPT-2 vocabulary: full blocks
  EXPECT_EQ(block_per_row_config(1, 100).block.x, 32);
}

// Replays the two passes' index arithmetic (kernels.cu column_reduce_pass1/2) on the CPU:
// every (row, column) must be summed exactly once, in an order fixed by the shape.
TEST(LaunchConfig, ColumnReduceCoversEveryElementOnce) {
  for (auto rc : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {37, 100}, {512, 768}, {8192, 3072}, {65, 33}, {5000000, 3}}) {
    const int64_t rows = rc.first, cols = rc.second;
    const ColumnReducePlan p = column_reduce_plan(rows, cols);
    ASSERT_EQ(launch_error(p.pass1), "");
    ASSERT_EQ(launch_error(p.pass2), "");
    ASSERT_LE(p.chunks, kMaxGridYZ);
    ASSERT_GE(p.chunks * p.rows_per_chunk, rows);
    ASSERT_EQ(p.partial_elems(), static_cast<size_t>(p.chunks * cols));
    if (rows * cols > 10000000) continue;  // the plan checks above suffice for the tall case
    std::vector<int> count(static_cast<size_t>(rows * cols), 0);
    for (int64_t bx = 0; bx < p.pass1.grid.x; ++bx) {
      for (int64_t by = 0; by < p.pass1.grid.y; ++by) {
        for (int64_t ty = 0; ty < p.pass1.block.y; ++ty) {
          for (int64_t tx = 0; tx < p.pass1.block.x; ++tx) {
            const int64_t c = bx * kColReduceTileCols + tx;
            if (c >= cols) continue;
            const int64_t r0 = by * p.rows_per_chunk;
            const int64_t r1 = std::min(rows, r0 + p.rows_per_chunk);
            for (int64_t r = r0 + ty; r < r1; r += kColReduceRowThreads) ++count[r * cols + c];
          }
        }
      }
    }
    for (int v : count) ASSERT_EQ(v, 1);
    EXPECT_GE(p.pass2.threads(), cols);
  }
}

TEST(LaunchConfig, ColumnReduceSplitDependsOnRowsOnly) {
  // Deterministic across stages/partitions: the same rows give the same chunks whatever the
  // column count (and there is no SM-count input at all).
  for (int64_t rows : {1, 64, 65, 8192, 1 << 22}) {
    const ColumnReducePlan a = column_reduce_plan(rows, 768);
    const ColumnReducePlan b = column_reduce_plan(rows, 50257);
    EXPECT_EQ(a.rows_per_chunk, b.rows_per_chunk);
    EXPECT_EQ(a.chunks, b.chunks);
  }
  EXPECT_EQ(column_reduce_plan(8192, 768).chunks, 128);
  EXPECT_EQ(column_reduce_plan(8192, 768).pass1.grid.x, 24);
}

TEST(LaunchConfig, RowsByColumnTiles) {
  // softmax-xent backward over the GPT-2 vocabulary, embedding over C = 768
  const LaunchConfig a = rows_by_col_tiles_config(8192, 50257);
  EXPECT_EQ(launch_error(a), "");
  EXPECT_EQ(a.grid.x, 8192);
  EXPECT_EQ(a.grid.y, 197);  // ceil(50257 / 256)
  EXPECT_GE(a.grid.y * a.block.x, 50257);
  const LaunchConfig b = rows_by_col_tiles_config(int64_t{1} << 20, 768);
  EXPECT_EQ(launch_error(b), "");  // a million rows on grid.x is fine
  EXPECT_EQ(b.grid.y, 3);
}

TEST(LaunchConfig, LaunchErrorCatchesBadConfigs) {
  LaunchConfig lc;
  lc.block.x = 2048;
  EXPECT_NE(launch_error(lc), "");
  lc.block.x = 256;
  lc.grid.y = 70000;
  EXPECT_NE(launch_error(lc), "");
  lc.grid.y = 1;
  lc.grid.x = 0;
  EXPECT_NE(launch_error(lc), "");
  lc.grid.x = 1;
  lc.shared_bytes = 64 * 1024;
  EXPECT_NE(launch_error(lc), "");
  lc.shared_bytes = 0;
  EXPECT_EQ(launch_error(lc), "");
}

TEST(LaunchConfig, AttentionShapes) {
  AttentionShape s{8, 1024, 768, 12};
  EXPECT_EQ(attention_shape_error(s), "");
  EXPECT_EQ(s.head_size(), 64);
  EXPECT_EQ(s.batches(), 96);
  EXPECT_EQ(s.score_elems(), 96LL * 1024 * 1024);
  EXPECT_EQ(s.head_elems(), 8LL * 1024 * 768);
  EXPECT_NE(attention_shape_error({8, 1024, 770, 12}), "");  // C % NH
  EXPECT_NE(attention_shape_error({0, 1024, 768, 12}), "");
  EXPECT_NE(attention_shape_error({1, 65536, 768, 12}), "");  // T*T overflows int
  EXPECT_EQ(attention_shape_error({3, 37, 100, 4}), "");
}

}  // namespace
}  // namespace cuda
}  // namespace paci
