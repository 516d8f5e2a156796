// Launch-configuration arithmetic of the CUDA backend's kernels: plain C++ (no CUDA headers),
// so the grid/block sizes are unit-tested on the CPU (tests/cuda/launch_config_test.cc) and
// the .cu launchers only copy these numbers into dim3.
//
// Every configuration here depends on the problem shape only, never on the SM count of the
// device or of a green-context partition: a reduction split the same way gives the same bits
// on every stage, which the "P-stage = 1-stage bitwise" determinism check relies on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace paci {
namespace cuda {

// CUDA limits every sm_70+ device has (cudaDeviceProp: maxThreadsPerBlock, maxGridSize).
constexpr int kMaxThreadsPerBlock = 1024;
constexpr int64_t kMaxGridX = 2147483647;  // 2^31 − 1
constexpr int kMaxGridYZ = 65535;
constexpr int kWarpSize = 32;

struct Dim3 {
  int64_t x = 1, y = 1, z = 1;
  int64_t count() const { return x * y * z; }
};

struct LaunchConfig {
  Dim3 grid, block;
  size_t shared_bytes = 0;
  int64_t threads() const { return grid.count() * block.count(); }
};

// Empty string if the configuration is launchable, else why not.
std::string launch_error(const LaunchConfig& lc);

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- elementwise kernels (GELU, residual, accumulate, AdamW, casts, softmax-xent backward) ----
// One thread per `vec` elements, `threads` per block; the kernel loops grid-stride, so a grid
// capped at kMaxGridX still covers any n. n == 0 gives an empty grid (grid.x == 0): the
// launcher skips the launch.
constexpr int kElementwiseThreads = 256;
LaunchConfig elementwise_config(size_t n, int vec = 1, int threads = kElementwiseThreads);

// ---- one warp per row (LayerNorm forward / backward-input, causal softmax of attention) ----
constexpr int kRowWarpsPerBlock = 4;
LaunchConfig warp_per_row_config(int64_t rows, int warps_per_block = kRowWarpsPerBlock);

// ---- one block per row (softmax + cross-entropy over the vocabulary) ----
// Threads: a multiple of 32 in [32, 1024], about 8+ columns per thread for long rows.
// Shared memory: one (max, sum) pair of floats per warp.
LaunchConfig block_per_row_config(int64_t rows, int cols);

// ---- column reductions (bias gradient, LayerNorm weight/bias gradients) ----
// out[c] += Σ_n f(n, c) over an [N, C] row-major matrix, in two deterministic passes:
//  pass 1: grid (ceil(C/32), chunks), block (32, 8): block (bx, by) sums rows
//          [by·rows_per_chunk, (by+1)·rows_per_chunk) of columns [32·bx, 32·bx+32) into
//          partial[by, c] (the 8 row-threads in a fixed order, then a fixed tree);
//  pass 2: one thread per column adds partial[0..chunks) in order, then out[c] += sum.
// rows_per_chunk depends on N only; chunks <= kMaxGridYZ.
constexpr int kColReduceTileCols = 32;
constexpr int kColReduceRowThreads = 8;
struct ColumnReducePlan {
  LaunchConfig pass1, pass2;
  int64_t rows = 0, cols = 0;
  int64_t rows_per_chunk = 0;
  int64_t chunks = 0;
  size_t partial_elems() const { return static_cast<size_t>(chunks) * static_cast<size_t>(cols); }
};
ColumnReducePlan column_reduce_plan(int64_t rows, int64_t cols);

// ---- row-segment kernels: grid.x over rows, grid.y over column tiles ----
// (embedding backward over sorted tokens: one row per token occurrence.)
// Rows go on grid.x (up to 2^31 − 1); columns are tiled by `threads` on grid.y.
LaunchConfig rows_by_col_tiles_config(int64_t rows, int64_t cols, int threads = 256);

// ---- attention ----
// Sizes of the scratch the (cuBLAS strided-batched GEMM + causal softmax) attention uses.
struct AttentionShape {
  int B = 0, T = 0, C = 0, NH = 0;
  int head_size() const { return NH > 0 ? C / NH : 0; }
  int64_t batches() const { return static_cast<int64_t>(B) * NH; }       // GEMM batch count
  int64_t score_elems() const { return batches() * T * T; }              // [B,NH,T,T]
  int64_t head_elems() const { return static_cast<int64_t>(B) * T * C; }  // one of q/k/v
};
// Empty if the shape is valid for the CUDA attention (C % NH == 0, positive sizes,
// per-batch strides and batch counts that fit cuBLAS's int arguments).
std::string attention_shape_error(const AttentionShape& s);

}  // namespace cuda
}  // namespace paci
