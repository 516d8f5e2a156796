// Splitting a GPT model into pipeline stages of contiguous layers.
#pragma once

#include <vector>

#include "exec/model/config.h"

namespace paci {

// One pipeline stage: transformer layers [first_layer, last_layer] (inclusive; a stage with
// no layers has last_layer == first_layer - 1), plus the token/position embedding on the
// first stage and the final LayerNorm + LM head + loss on the last.
struct StagePartition {
  int first_layer = 0;
  int last_layer = -1;
  bool has_embedding = false;
  bool has_head = false;

  int num_layers() const { return last_layer - first_layer + 1; }
  bool operator==(const StagePartition& o) const {
    return first_layer == o.first_layer && last_layer == o.last_layer &&
           has_embedding == o.has_embedding && has_head == o.has_head;
  }
};

// Estimated forward cost of the pieces, in units of one transformer layer. The head counts
// the LM-head GEMM (2·C·V FLOPs per token), which on small models outweighs many layers;
// the embedding is a lookup and nearly free. Backward costs scale the same way, so these
// ratios also hold for a whole training step.
double embedding_cost_in_layers(const GptConfig& cfg);
double head_cost_in_layers(const GptConfig& cfg);
double stage_cost_in_layers(const GptConfig& cfg, const StagePartition& stage);

// Stages of contiguous layers that minimise the most expensive stage (ties: the earliest
// split points). A stage must hold at least one layer, except the last, which may hold only
// the head when the head alone costs as much as the other stages (small models, big vocab).
// So `stages` may be at most layers + 1. Throws std::invalid_argument otherwise.
std::vector<StagePartition> balanced_partition(const GptConfig& cfg, int stages);

// Explicit layer counts per stage (an override of balanced_partition). Counts must be >= 0
// and sum to cfg.layers; a stage may have 0 layers only if it is the first or the last
// stage (it still runs the embedding or the head). Throws std::invalid_argument otherwise.
std::vector<StagePartition> partition_from_layers(const GptConfig& cfg,
                                                  const std::vector<int>& layers_per_stage);

}  // namespace paci
