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

// Names accepted by preset(), in a stable order (for help texts and error messages).
std::vector<std::string> preset_names();

// "tiny" (L2 C64 H4 T64, GPT-2 vocabulary: for tests on a laptop CPU), "gpt2-124m"
// (L12 C768 H12 T1024, tied, as GPT-2 small and llm.c), "gpt2-350m" (L24 C1024 H16 T1024,
// untied: the PACI paper's model). Throws std::invalid_argument naming the allowed names.
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
// as in llm.c.
double flops_per_token(const GptConfig& cfg, int seq_len = 0);

// One-line summary, e.g. "L12 C768 H12 T1024 V50257 tied".
std::string describe(const GptConfig& cfg);

}  // namespace paci
