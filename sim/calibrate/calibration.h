// Calibration: per-layer costs of a model on one machine, measured from an executor trace,
// from which a cost model for any partition (P stages) and any schedule (M, N) follows.
//
// A stage is a composition of pieces: what every stage has (receiving its input, keeping a
// copy, sending its output), the embedding (first stage), some transformer layers, the head
// (final LayerNorm, LM head and loss; last stage). Durations and sizes add up over the pieces
// a stage holds, so the costs of each piece, fitted from runs whose stages hold different
// compositions, predict any other partition of the same model.
#pragma once

#include <array>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "exec/model/partition.h"
#include "schedules/ir.h"
#include "schedules/trace/trace.h"
#include "sim/cost.h"

namespace paci {

// What a stage holds: the embedding, `layers` whole blocks, the MLP half of a block split with
// the previous stage (`mlp_first`), the attention half of a block split with the next stage
// (`attention_last`), the head. Attention and MLP halves are calibrated apart.
struct StageComposition {
  bool embedding = false;
  int layers = 0;
  bool head = false;
  bool mlp_first = false, attention_last = false;
  int attention_halves() const { return layers + attention_last; }
  int mlp_halves() const { return layers + mlp_first; }
  int halves() const { return mlp_first + attention_last; }  // of split blocks
  double blocks() const { return layers + 0.5 * halves(); }
};
// The composition of an executor stage.
StageComposition composition_of(const StagePartition& p);
// Costs of one piece for one micro-batch (seconds, bytes).
struct PieceCost {
  double f = 0, b = 0, i = 0, w = 0;
  double activation_bytes = 0;
  double params = 0;           // parameter count
  double workspace_bytes = 0;  // held for the whole run: scratch, message buffers
};

// Measured single-threaded GEMM time of each piece's linear layers (cpu::gemm, the executor's
// GEMM, one thread), per micro-batch of `tokens` tokens on a model of width `channels`: seconds
// of the forward (f), input-gradient (i) and weight-gradient (w) GEMMs of an attention half
// (qkv, attproj), an MLP half (fc, fcproj) and the head (LM head at the curve's vocabulary).
// Attention's score and value products, LayerNorms, GELU, softmax and bias sums are not GEMMs
// of a linear layer and are not in it.
struct GemmTimes {
  double f = 0, i = 0, w = 0;
};
struct GemmPoint {
  int channels = 0, tokens = 0;
  GemmTimes attention, mlp, head;
};
// Points of a full grid: every width with every token count, once each. Empty: not measured.
struct GemmCurve {
  int vocab = 0;  // of the head's GEMMs
  std::vector<GemmPoint> points;
  bool empty() const { return points.empty(); }
};
enum class GemmPiece { kAttention, kMlp, kHead };
// FLOPs of a piece's linear-layer GEMMs in one pass (0 f, 1 i, 2 w) at this width, token count
// and vocabulary (2 per multiply-add; the same for every pass: qkv + attproj 8C² per token, fc +
// fcproj 16C², LM head 2CV).
double gemm_flops(GemmPiece piece, int channels, double tokens, int vocab);
// The GEMM time of a piece in one pass at (channels, tokens, vocab) from the curve: seconds per
// FLOP interpolated bilinearly between the grid points in log(width) and log(tokens) (exact at
// a grid point; outside the grid, the nearest edge's seconds per FLOP), times gemm_flops.
// Throws CalibrationError if the curve is empty.
double gemm_seconds(const GemmCurve& curve, GemmPiece piece, int pass, int channels, double tokens, int vocab);

struct Calibration {
  std::string source;          // what was measured: device, model, date
  int micro_batch = 1, seq_len = 1;
  int layers = 0;              // transformer layers of the calibrated model
  // The calibrated model's other shapes (0: not recorded; such a calibration cannot be
  // rescaled to another width).
  int channels = 0, heads = 0, vocab = 0;
  bool tied = false;
  double boundary_bytes = 0;   // activation (and gradient) message between stages
  // stage: what every stage pays once; attention and mlp: the two halves of a block.
  PieceCost stage, embedding, attention, mlp, head;
  PieceCost layer() const;  // a whole block: attention + mlp
  double opt_seconds_per_param = 0;
  double latency = 0, bandwidth = 0;  // transfers between stages
  double bytes_per_param = 4;         // weights; gradients the same; AdamW state twice that
  // Slowdown per other computing device, per action kind (CostModel::contention), fitted
  // from two-device pipelined runs of the calibration's own, each paired with the same
  // partition on one device (fit_contention); all 0 when not measured.
  std::array<double, 6> contention{};
  // Single-threaded GEMM times over a range of widths and token counts (empty: not measured;
  // rescale_calibration then scales by FLOPs alone).
  GemmCurve gemm;
};

class CalibrationError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// The mean of the values within a factor kRobustBand of their median (0 for none). On a shared
// machine durations are a mixture of fast and slow spells (a busy neighbour, a host's SMT
// sibling): the median picks the commoner spell, while a step, a sum of durations, sees their
// mean; the band drops rare outliers (a preemption, a page-fault storm) all the same.
inline constexpr double kRobustBand = 2.5;
double robust_mean(const std::vector<double>& v);

// Fits the piece costs from measured runs: the robust mean F, B, I, W of every stage of every
// run (a stage without an action kind is skipped for that kind), then per kind a
// non-negative least-squares fit of
//   cost = stage + [embedding] + attention halves x attention + MLP halves x mlp + [head]
// over all stages of all runs. The compositions must separate the pieces (e.g. runs with
// layouts E,L,H and E+L+H, and one that splits a block: E+0.5,0.5,(L-1)+H); otherwise throws
// CalibrationError. Runs that never split a block fit a whole layer and give each half half of it.
// OPT: seconds per parameter, fitted over stages. Sizes per stage (activation bytes,
// parameters) come from the caller, who knows the model, and are fitted the same way.
struct StageSizes {
  double activation_bytes = 0, params = 0, workspace_bytes = 0;
};
struct CalibrationRun {
  const Trace* trace = nullptr;
  std::vector<StageComposition> stages;
  std::vector<StageSizes> sizes;
};
Calibration fit_calibration(const std::vector<CalibrationRun>& runs);

// One device running S stages in turn, every micro-batch through all of them: forwards, then
// the backward whole (even micro-batches) or split into I and W (odd ones), an OPT per stage
// after every M micro-batches. Nothing overlaps, so each action's time is its own.
Schedule calibration_schedule(int stages, int M, int N);

// The contention run: two stages on two devices, overlapping. Device 0 runs its forwards
// two micro-batches ahead of its backwards (F0 F1 F2 b0 F3 b1 ...), device 1 each
// micro-batch's forward and then its backward; backwards whole (even micro-batches) or I then
// W (odd ones) as in calibration_schedule; a flush, an OPT on each device, after every M.
// Its actions start both while the other device computes and while it is idle; no
// trainable schedule of the registry orders a step this way.
Schedule calibration_pipeline_schedule(int M, int N);

// The contention term, what `paci calibrate` fits, from paired rounds: each round a run on
// several devices at once (`together`) and, made just before it, the same partition's stages
// on one device (`alone`, no overlap). The simulator slows an action of kind k that starts
// while n other devices compute by (1 + s_k x n); a round's estimate is that model's
// least-squares s_k over its actions, weighted by their base duration b:
//   s_k = sum n (d - b) / sum n^2 b,
// d the measured duration, n counted from the trace the same way (another device's action
// with start <= t < end at the action's start t), b the robust mean of the same stage's
// same-kind durations alone in that round, not a fitted cost: fit errors of the pieces and
// the machine's slow drift cancel within a pair. Actions whose d / b is beyond kRobustBand
// either way (a preemption) are left out; never below 0.
// The result is per kind the median over the rounds that have the kind overlapping another
// device, so a round hit by a slow spell of the machine moves nothing. A kind no round has
// gets the median of the rounds' values pooled over their kinds; 0 if nothing overlapped.
struct ContentionRound {
  const Trace* together = nullptr;
  const Trace* alone = nullptr;
};
std::array<double, 6> fit_contention(const std::vector<ContentionRound>& rounds);

// The calibration of model `to` at micro-batches of B x T, from one of another width, depth,
// vocabulary or micro-batch size. With a GEMM curve (c.gemm), each piece's F, I and W (time t,
// calibrated shape "from", target shape "to") is split into its linear-layer GEMM part
// g = min(t, G_from) (0 if t <= 0) and the rest, and
//   t' = g x G_to / G_from + (t - g) x r,
// G = gemm_seconds of the pass (for B, the I and W GEMMs together), r the ratio of the rest's
// work: tokens x (the pass's attention + elementwise FLOPs per token, unit_flops: attention for
// F, twice it for I, none for W), or tokens x width where unit_flops counts none (a block's
// MLP half, every W); for B the I and W terms added. The embedding has no GEMM: t' = t x its
// FLOP ratio. Without a curve (older files), every piece's F, I, W and B (= I + W) is scaled by
// the ratio of its unit's FLOPs (unit_flops) times tokens. Either way the per-stage part and the
// message scale by tokens x width, the optimizer per parameter is kept; parameters exact for
// `to`; activation bytes by the ratio of exec_unit_costs' estimates. A prediction, not a
// measurement. Throws CalibrationError if the calibration does not record its model's width.
Calibration rescale_calibration(const Calibration& c, const GptConfig& to, int B, int T);
// Whether `c` was measured at this micro-batch shape on a model of this width, heads,
// vocabulary and tying (any depth).
bool calibrated_for(const Calibration& c, const GptConfig& m, int B, int T);

// The cost model of a partition, for the simulator.
CostModel cost_for_partition(const Calibration& c, const std::vector<StageComposition>& stages);

// The partition (embedding first, head last; stages may split a block between its halves,
// and may be embedding- or head-only) that minimises the slowest stage's F + B under the
// calibration's costs: min_max_partition (exec/model/partition.h) over the 2L + 2 units, each
// half of a block at its own calibrated cost. Throws CalibrationError if stages is not in
// 1..2L + 2.
std::vector<StagePartition> balanced_partition(const Calibration& c, int stages);
// The same as compositions.
std::vector<StageComposition> balanced_compositions(const Calibration& c, int stages);

// The text of a cost file (`paci sim --cost-file`): a calibration becomes the cost model of
// `stages` balanced stages; anything else is read as a per-stage paci-cost file.
bool is_calibration(std::string_view text);

// JSON file, format "paci-calibration" version 3. Version 3 adds the optional "gemm" object
// (the GEMM curve): {"threads": 1, "vocab": V, "points": [{"channels": C, "tokens": N,
// "attention": {"f": s, "i": s, "w": s}, "mlp": {...}, "head": {...}}, ...]}: vocab an integer
// in 1..2^30, 1..kMaxGemmPoints points with integer channels in 1..2^20 and tokens in
// 1..2^30, every time finite and in (0, 1e6] s, the points a full grid (every width with every
// token count exactly once). Versions 1 and 2 are read too (no curve: widths rescale by FLOPs);
// version 1, with one "layer" piece, is read with each half costing half a layer. Errors
// (CalibrationError) name the file and field. Counts are integers: micro_batch 1..kMaxCalibrationMicroBatch, seq_len
// 1..kMaxCalibrationSeqLen, layers 0..kMaxCalibrationLayers; every number is finite and at most
// 1e18 in magnitude; totals (boundary bytes, optimizer, latency, bandwidth, bytes per parameter)
// are >= 0; the whole model's F and B are > 0. cost_for_partition throws CalibrationError if a
// stage's summed F or B is not > 0 (fitted pieces may be negative).
inline constexpr int kMaxCalibrationMicroBatch = 1 << 20;
inline constexpr int kMaxCalibrationSeqLen = 1 << 24;
inline constexpr int kMaxCalibrationLayers = 100000;
inline constexpr int kMaxGemmPoints = 4096;
std::string calibration_to_json(const Calibration& c);
Calibration calibration_from_json(std::string_view text, const std::string& source);

}  // namespace paci
