// Where each parameter tensor of a stage lives in that stage's one flat buffer, and how it
// is initialised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "exec/model/config.h"
#include "exec/model/partition.h"

namespace paci {

// Per-layer tensors, in llm.c's order; then the embedding and head tensors.
enum class ParamKind {
  kLn1w,
  kLn1b,
  kQkvw,
  kQkvb,
  kAttprojw,
  kAttprojb,
  kLn2w,
  kLn2b,
  kFcw,
  kFcb,
  kFcprojw,
  kFcprojb,
  kWte,
  kWpe,
  kLnfw,
  kLnfb,
  kLmHead,
};
constexpr int kTensorsPerLayer = 12;

struct TensorInfo {
  std::string name;  // "wte", "wpe", "h.3.qkvw", "lnfw", "lm_head", ...
  ParamKind kind;
  int layer = -1;          // global layer index, -1 for embedding / head tensors
  int global_id = 0;       // unique in the whole model, independent of the partition
  size_t offset = 0;       // in elements, from the start of the stage's buffer
  size_t size = 0;         // elements
  int rows = 1, cols = 1;  // matrices are row-major [rows, cols]; vectors have rows == 1
  bool is_2d = false;      // matrices get weight decay, vectors (biases, LayerNorm) do not
  // lm_head of a tied model: a copy of wte on the last stage. Its gradient must be summed
  // with wte's before the optimizer step (see sum_tied_embedding_grads in stage_model.h).
  bool tied_to_wte = false;
};

struct ParamLayout {
  std::vector<TensorInfo> tensors;
  size_t total = 0;  // elements in the flat buffer (tensor sizes + alignment gaps)

  // nullptr if the stage has no tensor of that name.
  const TensorInfo* find(const std::string& name) const;
};

// Each tensor starts at a multiple of this many elements (64 bytes for fp32), so every
// tensor has the same alignment whatever stage or partition it lands in; the gaps are
// zero and stay zero (zero gradient, zero AdamW update).
constexpr size_t kParamAlignment = 16;

// Tensors of one stage: wte, wpe (first stage); 12 per layer (a block split between two
// stages: ln1, qkv, attproj on the stage with its attention half, ln2, fc, fcproj on the
// stage with its MLP half; names and global ids do not depend on the split); lnfw, lnfb, lm_head (last
// stage; with tied embeddings lm_head is a copy of wte). wte and lm_head have vocab_size
// rows (not padded_vocab: padding only exists in llm.c files).
ParamLayout make_param_layout(const GptConfig& cfg, const StagePartition& stage);

// GPT-2 initialisation into a host buffer of layout.total elements: matrices and embeddings
// N(0, 0.02), residual projections (attprojw, fcprojw) N(0, 0.02/sqrt(2L)), LayerNorm
// weights 1, biases 0. Each tensor draws from its own random stream seeded by
// (seed, global_id), and a tied lm_head from wte's stream, so a tensor gets the same values
// whichever stage holds it.
template <typename T>
void init_parameters(const GptConfig& cfg, const ParamLayout& layout, uint64_t seed, T* out);

// Deterministic normal variates (splitmix64 + Box–Muller), identical on every platform,
// unlike std::normal_distribution. Exposed for tests that need reproducible data.
class NormalStream {
 public:
  NormalStream(uint64_t seed, uint64_t stream);
  double next();          // N(0, 1)
  double next_uniform();  // U(0, 1), never 0
  uint64_t next_u64();

 private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace paci
