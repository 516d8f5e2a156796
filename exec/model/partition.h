// Splitting a GPT model into pipeline stages: contiguous ranges of units (config.h: the
// embedding, an attention half and an MLP half per block, the final LayerNorm + head), the
// layout text of `--partition`, and the one partitioner that sim and exec both use.
#pragma once

#include <string>
#include <vector>

#include "exec/model/config.h"

namespace paci {

// One pipeline stage: a contiguous, non-empty range of units. In layer terms: transformer
// blocks [first_layer, last_layer] (inclusive) have at least one half on this stage (a stage
// without blocks has last_layer == first_layer - 1: first_layer is 0 for an embedding-only
// stage and L for a head-only one); the embedding is on the first stage, the final LayerNorm
// + LM head + loss on the last. A stage may start with block first_layer's MLP half
// (`starts_with_mlp`: that block's attention half is on the previous stage, and the stage's
// input is the block's first-residual output) and may end after block last_layer's attention
// half (`ends_with_attention`: its output is that residual stream). Both are false for
// whole-block stages, so code that only knows whole blocks keeps working on them.
struct StagePartition {
  int first_layer = 0;
  int last_layer = -1;
  bool has_embedding = false;
  bool has_head = false;
  bool starts_with_mlp = false;
  bool ends_with_attention = false;

  // Blocks with at least one half here (a split block counts on both of its stages).
  int num_layers() const { return last_layer - first_layer + 1; }
  // Halves of blocks on this stage (2 per whole block).
  int num_halves() const { return 2 * num_layers() - starts_with_mlp - ends_with_attention; }
  // Blocks with both halves here, and halves of split blocks (0, 1 or 2).
  int whole_layers() const { return num_layers() - starts_with_mlp - ends_with_attention; }
  int split_halves() const { return starts_with_mlp + ends_with_attention; }
  bool has_attention(int layer) const {
    return layer >= first_layer && layer <= last_layer && !(layer == first_layer && starts_with_mlp);
  }
  bool has_mlp(int layer) const {
    return layer >= first_layer && layer <= last_layer && !(layer == last_layer && ends_with_attention);
  }
  // Units [first_unit(), last_unit()] (inclusive).
  int first_unit() const { return has_embedding ? 0 : 2 * first_layer + (starts_with_mlp ? 2 : 1); }
  int last_unit() const {
    return has_head ? 2 * last_layer + 3 : 2 * last_layer + (ends_with_attention ? 1 : 2);
  }
  int num_units() const { return last_unit() - first_unit() + 1; }

  bool operator==(const StagePartition& o) const {
    return first_layer == o.first_layer && last_layer == o.last_layer &&
           has_embedding == o.has_embedding && has_head == o.has_head &&
           starts_with_mlp == o.starts_with_mlp && ends_with_attention == o.ends_with_attention;
  }
  bool operator!=(const StagePartition& o) const { return !(*this == o); }
};

// The stage holding units [first_unit, last_unit] of cfg (0 <= first <= last < 2L + 2).
StagePartition stage_from_units(const GptConfig& cfg, int first_unit, int last_unit);

// Stages from unit boundaries: stage s holds units [bounds[s], bounds[s+1]); bounds[0] = 0,
// bounds.back() = 2L + 2, strictly increasing. Throws std::invalid_argument otherwise.
std::vector<StagePartition> partition_from_units(const GptConfig& cfg, const std::vector<int>& bounds);
// The inverse: S + 1 unit boundaries.
std::vector<int> unit_bounds(const std::vector<StagePartition>& parts);

// Throws std::invalid_argument unless `parts` cover all units of cfg contiguously, in order,
// each stage non-empty.
void check_partition(const GptConfig& cfg, const std::vector<StagePartition>& parts);

// ---- The layout text of `--partition` ----
//
//   layout := stage ("," stage)*          one entry per stage, in pipeline order
//   stage  := part ("+" part)*
//   part   := "E" | "H" | BLOCKS          BLOCKS: a non-negative multiple of 0.5 ("3", "2.5", "0.5")
//
// Blocks are consecutive across stages: a stage whose running total of blocks ends at x.5
// ends after that block's attention half, and the next stage starts with its MLP half. The
// embedding is always on the first stage and the head always on the last, so "E" and "H"
// are optional markers there: "E" alone is an embedding-only first stage, "H" alone a
// head-only last stage; "E" anywhere but the start of the first stage, or "H" anywhere but
// the end of the last, is an error. A middle stage must hold at least half a block; the
// blocks must sum to the model's L. For compatibility, "0" as the first / last entry means
// embedding-only / head-only, so the old layer lists ("2,1,1", "0,24,0") read as before.
// Examples on a 24-block model: "E+3,3,3,3,3,3,3.5,2.5+H", "E,12,12,H", "3,3,3,3,3,3,4,2".
//
// Errors (std::invalid_argument) are one line starting "partition: ", naming the entry and
// what is allowed.
std::vector<StagePartition> parse_layout(const GptConfig& cfg, const std::string& text);
// The canonical form, which parse_layout reads back: "E" / "E+x" first, "x+H" / "H" last,
// e.g. "E+3,3,3,3,3,3,3.5,2.5+H"; one stage is "E+L+H".
std::string format_layout(const std::vector<StagePartition>& parts);

// ---- The partitioner ----
//
// Costs of one unit, in any consistent units (seconds, FLOPs; bytes).
struct UnitCost {
  double time = 0;              // F + B of one micro-batch
  double static_bytes = 0;      // weights, gradients, optimizer state
  double activation_bytes = 0;  // held per micro-batch in flight
};

struct PartitionLimits {
  // Per-device memory limit in bytes; 0 = none. Stage s needs
  //   sum of static_bytes + inflight[s] x sum of activation_bytes   over its units.
  double memory_limit = 0;
  // Micro-batches in flight on stage s (the schedule's StageFacts::inflight_peak: P - s for
  // 1F1B, M for GPipe). Empty: P - s (1F1B). Otherwise one entry per stage.
  std::vector<double> inflight;
};

// Contiguous, non-empty unit ranges for `stages` stages that minimise the slowest stage's
// time (sum of its units' time); ties broken by the smallest sum of squared stage times, so
// that stages off the critical one are balanced too. Returns S + 1 boundaries (stage s holds
// units [b[s], b[s+1])). Throws std::invalid_argument when stages is not in 1..units.size(),
// or when no split fits the memory limit (naming the smallest per-device memory that would
// fit). O(S·U²); without a memory limit and with S·U² > 5e7 (thousands of blocks) a binary
// search with greedy packing (exact min-max of the times clamped at 0, no tie-break).
std::vector<int> min_max_partition(const std::vector<UnitCost>& units, int stages,
                                   const PartitionLimits& limits = {});
// The memory of each stage of `bounds` under `limits` (the inflight rule above).
std::vector<double> stage_memory(const std::vector<UnitCost>& units, const std::vector<int>& bounds,
                                 const PartitionLimits& limits = {});

// ---- The executor's partition ----
//
// FLOP-proportional unit costs (unit_flops(...).training() per token; the embedding nearly
// free, the head the LM-head GEMM plus softmax), no memory. What balanced_partition balances.
std::vector<UnitCost> flop_unit_costs(const GptConfig& cfg);

// The same times with the executor's fp32 memory, for a memory-limited partition of
// `paci train`: static bytes 16 per stored parameter (weights, gradients, AdamW's two
// moments; a tied head's copy of wte counted), activation bytes per micro-batch of B x T
// tokens as a StageModel slot holds them (per token: attention half ~12C + NH·T + 2 floats,
// MLP half ~15C + 2, head V + 2C + 4 (the logits), embedding C + 1); an estimate (the
// backend's attention state and alignment vary), not an allocation.
std::vector<UnitCost> exec_unit_costs(const GptConfig& cfg, int micro_batch, int seq_len);

// Estimated cost of the pieces, in units of one transformer block's training FLOPs.
double embedding_cost_in_layers(const GptConfig& cfg);
double head_cost_in_layers(const GptConfig& cfg);
double stage_cost_in_layers(const GptConfig& cfg, const StagePartition& stage);

// min_max_partition over flop_unit_costs(cfg): stages may split blocks between their
// halves and may be embedding- or head-only. `stages` may be at most 2L + 2 (units).
// Throws std::invalid_argument otherwise.
std::vector<StagePartition> balanced_partition(const GptConfig& cfg, int stages,
                                               const PartitionLimits& limits = {});
// Same with explicit unit costs (e.g. the analytic cost model's seconds and bytes).
std::vector<StagePartition> balanced_partition(const GptConfig& cfg, int stages,
                                               const std::vector<UnitCost>& units,
                                               const PartitionLimits& limits = {});

// Explicit whole-block counts per stage (the old `--partition 2,1,1`). Counts must be >= 0
// and sum to cfg.layers; a stage may have 0 layers only if it is the first or the last
// stage (it still runs the embedding or the head). Throws std::invalid_argument otherwise.
std::vector<StagePartition> partition_from_layers(const GptConfig& cfg,
                                                  const std::vector<int>& layers_per_stage);

}  // namespace paci
