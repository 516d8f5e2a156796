// GPT-2 model shapes: the configuration every other module of exec/model is built from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace paci {

// Shapes of a GPT-2-style decoder (pre-LayerNorm, GELU-tanh, learned positions).
// `seq_len` is the model's maximum context (rows of the position embedding); a
// StageModel may run shorter sequences.
struct GptConfig {
  std::string name;          // the preset or spec it came from (informational only)
  int vocab_size = 50257;    // V: rows of wte / columns of the logits.
  int padded_vocab = 50304;  // Vp: only used by llm.c checkpoints (padding rows are zero).
  int seq_len = 1024;        // maxT.
  int layers = 12;           // L.
  int channels = 768;        // C.
  int heads = 12;            // NH; head size is C / NH.
  // GPT-2 ties the LM head to wte; the PACI paper's model does not (the default here).
  bool tied_embeddings = false;

  int head_size() const { return channels / heads; }
};

// Canonical preset names accepted by parse_model(), in a stable order (for help texts and
// error messages): tiny, bytes, gpt2-124m, gpt2-350m, gpt2-774m, gpt2-1558m.
std::vector<std::string> preset_names();

// The one model description of sim and exec. `spec` is
//   tiny        L2  C64   H4  T64   (GPT-2 vocabulary; for tests on a laptop CPU), untied
//   bytes       L8  C64   H4  T64   V256: byte-level (paci data prepare --tokenizer bytes), untied;
//               the PACI study's model, which learns on 2 cores
//   gpt2-124m   L12 C768  H12 T1024, tied (GPT-2 small, llm.c); alias gpt2
//   gpt2-350m   L24 C1024 H16 T1024, UNTIED (the PACI paper's model); alias gpt2-medium
//   gpt2-774m   L36 C1280 H20 T1024, tied; alias gpt2-large
//   gpt2-1558m  L48 C1600 H25 T1024, tied; alias gpt2-xl
//   custom:layers=L,d=C,heads=H,seq=T,vocab=V[,tied=0|1]   (untied unless tied=1)
// All GPT-2 presets (all but bytes) have V = 50257 (padded to 50304 in llm.c files). Throws
// std::invalid_argument naming what is allowed.
GptConfig parse_model(const std::string& spec);

// Same as parse_model (kept for existing callers).
GptConfig preset(const std::string& name);

// Throws std::invalid_argument with a message naming the bad field when a shape is
// impossible (non-positive sizes, channels % heads != 0, padded_vocab < vocab_size).
void validate(const GptConfig& cfg);

// Total parameter count of the whole model. Tied models count the shared wte once.
int64_t num_parameters(const GptConfig& cfg);

// Training FLOPs per token (forward + backward) at context length `seq_len` (the
// configured maximum if <= 0), by llm.c's convention: 6·N + 6·L·C·T, where N counts every
// parameter as one multiply-add per token in the forward (2 FLOPs) and twice that in the
// backward, and 6·L·C·T covers the causal attention score and value products. For an untied
// model N includes both wte and lm_head; the embedding lookup is thus slightly overcounted,
// as in llm.c. This is the MFU convention (comparable with llm.c); what the partitioner and
// the analytic cost model charge each unit is unit_flops() below.
double flops_per_token(const GptConfig& cfg, int seq_len = 0);

// ---- Units: the pieces a pipeline partition is made of. ----
// A model of L blocks has U = 2L + 2 units: unit 0 the embedding (wte, wpe); unit 2l+1 block
// l's attention half (ln1, qkv, attention, attproj, first residual); unit 2l+2 its MLP half
// (ln2, fc, gelu, fcproj, second residual); unit 2L+1 the final LayerNorm + LM head + loss.
enum class UnitKind { kEmbedding, kAttention, kMlp, kHead };
int num_units(const GptConfig& cfg);
UnitKind unit_kind(const GptConfig& cfg, int unit);  // throws std::out_of_range
int unit_layer(int unit);                            // block of a half, -1 for embedding/head
std::string unit_name(const GptConfig& cfg, int unit);  // "embedding", "h.3.attn", "h.3.mlp", "head"

// Work of one unit per token, forward, at context T. GEMMs count 2 FLOPs per multiply-add of
// each weight matrix (qkv + attproj = 8C², fc + fcproj = 16C², LM head 2CV); attention counts
// the full T×T square of scores and values (4TC); elementwise is a rough FLOP count of the
// memory-bound work that matters for balance (embedding lookup 2C; softmax, cross-entropy and
// final LayerNorm 5V + 8C; a block's LayerNorms, GELU and residuals are neglected).
// Backward: the input gradient costs gemm + 2·attention + elementwise, the weight gradient gemm.
struct UnitFlops {
  double gemm = 0, attention = 0, elementwise = 0;
  double forward() const { return gemm + attention + elementwise; }
  double input_grad() const { return gemm + 2 * attention + elementwise; }
  double weight_grad() const { return gemm; }
  double training() const { return forward() + input_grad() + weight_grad(); }
};
UnitFlops unit_flops(const GptConfig& cfg, int unit, int seq_len = 0);

// Parameters of one unit. Embedding V·C + T·C; attention half 4C² + 6C; MLP half 8C² + 7C;
// head 2C + V·C, except that a tied head shares wte: then it counts 2C, unless `stored` (the
// executor's last stage holds its own copy of wte as lm_head, which costs memory). Summed over
// all units (stored = false) this is num_parameters(cfg).
int64_t unit_parameters(const GptConfig& cfg, int unit, bool stored = false);
// Parameters one unit's matmuls read (weights and biases of its linear layers; the head's V·C
// whether tied or not): attention half 4C² + 4C; MLP half 8C² + 5C; head V·C; embedding 0
// (a lookup). What a bf16 autocast forward casts.
int64_t unit_matmul_parameters(const GptConfig& cfg, int unit);

// One-line summary, e.g. "L12 C768 H12 T1024 V50257 tied".
std::string describe(const GptConfig& cfg);

}  // namespace paci
