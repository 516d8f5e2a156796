// Measured runs for `paci calibrate` and `paci compare`: the executor runs a schedule on
// synthetic tokens (timing does not depend on their values) and returns its trace.
#pragma once

#include <array>
#include <ostream>
#include <vector>

#include "cli/device.h"
#include "exec/model/config.h"
#include "exec/model/partition.h"
#include "exec/mpi/mpi.h"
#include "exec/runtime/runtime.h"
#include "schedules/ir.h"
#include "schedules/trace/trace.h"
#include "sim/calibrate/calibration.h"

namespace paci::cli {

struct MeasuredRun {
  Trace trace;
  std::vector<StageMemory> memory;
};

// With `mpi` (one process per rank, paci under mpirun) this process runs its rank's device
// and rank 0 gets the whole run's trace and memory (the other ranks an empty trace).
MeasuredRun measure(const Schedule& s, const GptConfig& model, const std::vector<StagePartition>& partition,
                    int B, int T, uint64_t seed, const ExecDevice& device = {}, MpiSession* mpi = nullptr);

std::vector<StageComposition> compositions(const std::vector<StagePartition>& partition);

// The same run `warmup + repeat` times (each rank the same under mpirun): the first `warmup`
// are not kept; the others' traces and step times (compute_metrics) are.
struct RepeatedRun {
  std::vector<MeasuredRun> runs;   // rank 0 (or threads): the kept runs; other ranks: empty traces
  std::vector<double> step_times;  // one per kept run
  // The run whose step time is the median's (the lower middle for an even count), and the
  // median of the step times (the mean of the two middle ones for an even count).
  size_t median_run = 0;
  double median_step_time = 0;
};
RepeatedRun measure_repeated(const Schedule& s, const GptConfig& model, const std::vector<StagePartition>& partition,
                             int B, int T, uint64_t seed, int repeat, int warmup, const ExecDevice& device = {},
                             MpiSession* mpi = nullptr);

// What `paci calibrate` measures.
struct CalibrateOptions {
  int microbatches = 4, steps = 3;  // of each measured run (after its warm-up steps)
  uint64_t seed = 1;
  int repeat = 3;        // runs of each layout (and of the contention run), interleaved
  int warmup_steps = 1;  // steps at the start of every run that are not counted
  // The GEMM curve's grid; no widths: no curve. default_gemm_* give the defaults.
  std::vector<int> gemm_widths, gemm_tokens;
  std::vector<StagePartition> also;  // a partition the user will run, measured too
};
// Widths C x {1/2, 3/4, 1, 3/2, 2} and token counts N x {1/2, 1, 2} (N = B x T), rounded, >= 1.
std::vector<int> default_gemm_widths(int channels);
std::vector<int> default_gemm_tokens(int tokens);

// Runs on this machine whose stages separate the pieces (layouts E,L,H; E+L+H; and one that
// splits block 0 between its halves, E+0.5,0.5,(L-1)+H: the MLP half is a stage of its own), plus `also` (a partition the user will
// run, measured too) when given, each `repeat` times, fitted into per-piece costs from the
// robust mean (robust_mean) of each stage's durations over all its runs (the warm-up steps of
// every run left out); the contention term from `repeat` runs of calibration_pipeline_schedule
// on the partition E + the first half of the blocks | the rest + H, each against the same
// partition run on one device just before it in the same round (fit_contention; that
// single-device run is one of the fitted layouts too); transfer bandwidth from timing a copy
// of one activation message; and the GEMM curve (GemmCurveTimer, its rounds spread over the
// K rounds of runs).
Calibration calibrate_cpu(const GptConfig& model, int B, int T, const CalibrateOptions& options, std::ostream& log,
                          const ExecDevice& device = {});

// Single-threaded times of each piece's linear-layer GEMMs (cpu::gemm with one thread, the
// executor's GEMM, at the executor's shapes) at every width x token count, the given vocabulary
// for the head. Timed in rounds, each one call of every GEMM of every point (the first round
// untimed), so that every point sees the same mix of the machine's fast and slow spells; a
// GEMM's time is the robust mean of its calls, summed per piece and pass.
inline constexpr int kGemmCurveMaxVocab = 8192;
class GemmCurveTimer {
 public:
  GemmCurveTimer(std::vector<int> widths, std::vector<int> tokens, int vocab);
  void round();
  GemmCurve curve() const;
  int rounds() const { return rounds_; }

 private:
  std::vector<int> widths_, tokens_;
  int vocab_ = 0, rounds_ = 0;
  std::vector<float> in_, out_, w_, dw_;
  // [point][piece (attention, MLP, head)][layer (two, one for the head)][pass]: seconds per call.
  std::vector<std::array<std::array<std::array<std::vector<double>, 3>, 2>, 3>> samples_;
};

}  // namespace paci::cli
