#include "exec/model/partition.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace paci {
namespace {

// Forward FLOPs per token of one transformer layer: the four GEMMs (2·12·C²) plus the
// attention score and value products (2·2·T·C, counting the full T×T square as llm.c does).
double layer_flops(const GptConfig& cfg) {
  const double C = cfg.channels, T = cfg.seq_len;
  return 24.0 * C * C + 4.0 * T * C;
}

}  // namespace

double embedding_cost_in_layers(const GptConfig& cfg) {
  // Two row reads and an add per channel: memory-bound, a few FLOPs per channel.
  return 2.0 * cfg.channels / layer_flops(cfg);
}

double head_cost_in_layers(const GptConfig& cfg) {
  const double C = cfg.channels, V = cfg.vocab_size;
  // LM-head GEMM plus the softmax / cross-entropy (~5 FLOPs per logit) and final LayerNorm.
  return (2.0 * C * V + 5.0 * V + 8.0 * C) / layer_flops(cfg);
}

double stage_cost_in_layers(const GptConfig& cfg, const StagePartition& stage) {
  return stage.num_layers() + (stage.has_embedding ? embedding_cost_in_layers(cfg) : 0.0) +
         (stage.has_head ? head_cost_in_layers(cfg) : 0.0);
}

std::vector<StagePartition> partition_from_layers(const GptConfig& cfg,
                                                  const std::vector<int>& layers_per_stage) {
  validate(cfg);
  const int S = static_cast<int>(layers_per_stage.size());
  if (S == 0) throw std::invalid_argument("partition: need at least one stage");
  int sum = 0;
  for (int s = 0; s < S; ++s) {
    const int n = layers_per_stage[s];
    if (n < 0) {
      throw std::invalid_argument("partition: stage " + std::to_string(s) + " has " +
                                  std::to_string(n) + " layers; counts must be >= 0");
    }
    if (n == 0 && s != 0 && s != S - 1) {
      throw std::invalid_argument("partition: stage " + std::to_string(s) +
                                  " has 0 layers; only the first (embedding) or last (head) "
                                  "stage may be without layers");
    }
    sum += n;
  }
  if (sum != cfg.layers) {
    throw std::invalid_argument("partition: layer counts sum to " + std::to_string(sum) +
                                " but the model has " + std::to_string(cfg.layers) + " layers");
  }
  std::vector<StagePartition> parts(S);
  int next = 0;
  for (int s = 0; s < S; ++s) {
    parts[s].first_layer = next;
    parts[s].last_layer = next + layers_per_stage[s] - 1;
    parts[s].has_embedding = (s == 0);
    parts[s].has_head = (s == S - 1);
    next += layers_per_stage[s];
  }
  return parts;
}

std::vector<StagePartition> balanced_partition(const GptConfig& cfg, int stages) {
  validate(cfg);
  const int L = cfg.layers;
  if (stages < 1) throw std::invalid_argument("partition: stages must be >= 1");
  if (stages > L + 1) {
    throw std::invalid_argument("partition: " + std::to_string(stages) +
                                " stages for a model with " + std::to_string(L) +
                                " layers; at most layers + 1 = " + std::to_string(L + 1) +
                                " stages (every stage but the last needs a layer)");
  }
  const double emb = embedding_cost_in_layers(cfg), head = head_cost_in_layers(cfg);
  auto cost = [&](int stage, int n) {
    return n + (stage == 0 ? emb : 0.0) + (stage == stages - 1 ? head : 0.0);
  };
  // Dynamic programme over (stages used, layers placed), run twice: first for the smallest
  // possible maximum stage cost, then, among splits within that maximum, for the smallest
  // sum of squared stage costs, so that stages off the critical one are balanced too.
  const double inf = std::numeric_limits<double>::infinity();
  auto solve = [&](double cap, bool minimise_max, std::vector<int>* counts) {
    // best[s][k]: objective when stages 0..s-1 hold layers 0..k-1.
    std::vector<std::vector<double>> best(stages + 1, std::vector<double>(L + 1, inf));
    std::vector<std::vector<int>> cut(stages + 1, std::vector<int>(L + 1, -1));
    best[0][0] = 0.0;
    for (int s = 1; s <= stages; ++s) {
      const bool last = (s == stages);
      for (int k = 0; k <= L; ++k) {
        for (int j = 0; j <= k; ++j) {  // stage s-1 holds layers j..k-1
          const int n = k - j;
          if ((n == 0 && !last) || best[s - 1][j] == inf) continue;
          const double c = cost(s - 1, n);
          if (c > cap) continue;
          const double v = minimise_max ? std::max(best[s - 1][j], c) : best[s - 1][j] + c * c;
          if (v < best[s][k] - 1e-12) {
            best[s][k] = v;
            cut[s][k] = j;
          }
        }
      }
    }
    if (counts) {
      counts->assign(stages, 0);
      for (int s = stages, k = L; s >= 1; --s) {
        const int j = cut[s][k];
        (*counts)[s - 1] = k - j;
        k = j;
      }
    }
    return best[stages][L];
  };
  const double max_cost = solve(inf, /*minimise_max=*/true, nullptr);
  std::vector<int> counts;
  solve(max_cost + 1e-9, /*minimise_max=*/false, &counts);
  return partition_from_layers(cfg, counts);
}

}  // namespace paci
