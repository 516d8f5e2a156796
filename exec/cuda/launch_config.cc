#include "exec/cuda/launch_config.h"

#include <algorithm>
#include <climits>

namespace paci {
namespace cuda {

std::string launch_error(const LaunchConfig& lc) {
  const Dim3& g = lc.grid;
  const Dim3& b = lc.block;
  if (b.x < 1 || b.y < 1 || b.z < 1) return "block has a zero or negative dimension";
  if (b.count() > kMaxThreadsPerBlock) {
    return "block of " + std::to_string(b.count()) + " threads exceeds " +
           std::to_string(kMaxThreadsPerBlock);
  }
  if (b.z > 64) return "block.z exceeds 64";
  if (g.x < 1 || g.y < 1 || g.z < 1) return "grid has a zero or negative dimension";
  if (g.x > kMaxGridX) return "grid.x exceeds 2^31-1";
  if (g.y > kMaxGridYZ || g.z > kMaxGridYZ) return "grid.y or grid.z exceeds 65535";
  if (lc.shared_bytes > 48 * 1024) return "more than 48 KiB of static shared memory";
  return {};
}

LaunchConfig elementwise_config(size_t n, int vec, int threads) {
  LaunchConfig lc;
  lc.block.x = threads;
  const int64_t units = ceil_div(static_cast<int64_t>(n), std::max(vec, 1));
  lc.grid.x = std::min<int64_t>(ceil_div(units, threads), kMaxGridX);
  return lc;  // grid.x == 0 when n == 0: nothing to launch
}

LaunchConfig warp_per_row_config(int64_t rows, int warps_per_block) {
  LaunchConfig lc;
  lc.block.x = static_cast<int64_t>(warps_per_block) * kWarpSize;
  lc.grid.x = ceil_div(rows, warps_per_block);
  return lc;
}

LaunchConfig block_per_row_config(int64_t rows, int cols) {
  LaunchConfig lc;
  // ~8 columns per thread, rounded up to whole warps, within [32, 1024].
  int64_t t = ceil_div(ceil_div(cols, 8), kWarpSize) * kWarpSize;
  t = std::max<int64_t>(kWarpSize, std::min<int64_t>(kMaxThreadsPerBlock, t));
  lc.block.x = t;
  lc.grid.x = rows;
  lc.shared_bytes = static_cast<size_t>(t / kWarpSize) * 2 * sizeof(float);
  return lc;
}

ColumnReducePlan column_reduce_plan(int64_t rows, int64_t cols) {
  ColumnReducePlan p;
  p.rows = rows;
  p.cols = cols;
  // 64 rows per chunk (8 per row-thread) while that keeps chunks under the grid.y limit;
  // larger chunks for very tall matrices. Depends on `rows` only.
  p.rows_per_chunk = 64;
  while (ceil_div(rows, p.rows_per_chunk) > kMaxGridYZ) p.rows_per_chunk *= 2;
  p.chunks = std::max<int64_t>(1, ceil_div(rows, p.rows_per_chunk));
  p.pass1.block.x = kColReduceTileCols;
  p.pass1.block.y = kColReduceRowThreads;
  p.pass1.grid.x = ceil_div(cols, kColReduceTileCols);
  p.pass1.grid.y = p.chunks;
  p.pass1.shared_bytes = sizeof(float) * 2 * kColReduceTileCols * kColReduceRowThreads;
  p.pass2.block.x = 256;
  p.pass2.grid.x = ceil_div(cols, 256);
  return p;
}

LaunchConfig rows_by_col_tiles_config(int64_t rows, int64_t cols, int threads) {
  LaunchConfig lc;
  lc.block.x = threads;
  lc.grid.x = rows;
  lc.grid.y = ceil_div(cols, threads);
  return lc;
}

std::string attention_shape_error(const AttentionShape& s) {
  if (s.B <= 0 || s.T <= 0 || s.C <= 0 || s.NH <= 0) return "attention: sizes must be positive";
  if (s.C % s.NH != 0) return "attention: C must be a multiple of NH";
  if (s.batches() > INT_MAX) return "attention: B*NH exceeds int";
  if (static_cast<int64_t>(s.T) * s.T > INT_MAX) return "attention: T*T exceeds int";
  if (static_cast<int64_t>(s.B) * s.T * 3 * s.C > INT_MAX) {
    return "attention: B*T*3C exceeds int";
  }
  return {};
}

}  // namespace cuda
}  // namespace paci
