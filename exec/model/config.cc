#include "exec/model/config.h"

#include <stdexcept>

namespace paci {

std::vector<std::string> preset_names() { return {"tiny", "gpt2-124m", "gpt2-350m"}; }

GptConfig preset(const std::string& name) {
  GptConfig cfg;
  if (name == "tiny") {
    cfg.seq_len = 64;
    cfg.layers = 2;
    cfg.channels = 64;
    cfg.heads = 4;
    cfg.tied_embeddings = false;
  } else if (name == "gpt2-124m") {
    cfg.seq_len = 1024;
    cfg.layers = 12;
    cfg.channels = 768;
    cfg.heads = 12;
    cfg.tied_embeddings = true;
  } else if (name == "gpt2-350m") {
    cfg.seq_len = 1024;
    cfg.layers = 24;
    cfg.channels = 1024;
    cfg.heads = 16;
    cfg.tied_embeddings = false;
  } else {
    std::string allowed;
    for (const std::string& n : preset_names()) allowed += (allowed.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown model preset '" + name + "' (allowed: " + allowed + ")");
  }
  validate(cfg);
  return cfg;
}

void validate(const GptConfig& cfg) {
  auto require = [](bool ok, const std::string& msg) {
    if (!ok) throw std::invalid_argument("invalid model config: " + msg);
  };
  require(cfg.vocab_size > 0, "vocab_size must be > 0, got " + std::to_string(cfg.vocab_size));
  require(cfg.padded_vocab >= cfg.vocab_size, "padded_vocab (" + std::to_string(cfg.padded_vocab) +
                                                  ") must be >= vocab_size (" +
                                                  std::to_string(cfg.vocab_size) + ")");
  require(cfg.seq_len > 0, "seq_len must be > 0, got " + std::to_string(cfg.seq_len));
  require(cfg.layers >= 0, "layers must be >= 0, got " + std::to_string(cfg.layers));
  require(cfg.channels > 0, "channels must be > 0, got " + std::to_string(cfg.channels));
  require(cfg.heads > 0, "heads must be > 0, got " + std::to_string(cfg.heads));
  require(cfg.channels % cfg.heads == 0, "channels (" + std::to_string(cfg.channels) +
                                             ") must be divisible by heads (" +
                                             std::to_string(cfg.heads) + ")");
}

int64_t num_parameters(const GptConfig& cfg) {
  const int64_t V = cfg.vocab_size, C = cfg.channels, T = cfg.seq_len, L = cfg.layers;
  const int64_t per_layer =
      2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (4 * C * C + 4 * C) + (4 * C * C + C);
  const int64_t head = 2 * C + (cfg.tied_embeddings ? 0 : V * C);
  return V * C + T * C + L * per_layer + head;
}

double flops_per_token(const GptConfig& cfg, int seq_len) {
  const double T = seq_len > 0 ? seq_len : cfg.seq_len;
  return 6.0 * static_cast<double>(num_parameters(cfg)) +
         6.0 * cfg.layers * static_cast<double>(cfg.channels) * T;
}

std::string describe(const GptConfig& cfg) {
  return "L" + std::to_string(cfg.layers) + " C" + std::to_string(cfg.channels) + " H" +
         std::to_string(cfg.heads) + " T" + std::to_string(cfg.seq_len) + " V" +
         std::to_string(cfg.vocab_size) + (cfg.tied_embeddings ? " tied" : " untied");
}

}  // namespace paci
