#include "exec/model/config.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <stdexcept>

namespace paci {

std::vector<std::string> preset_names() {
  return {"tiny", "bytes", "gpt2-124m", "gpt2-350m", "gpt2-774m", "gpt2-1558m"};
}

namespace {

const char* kCustomHelp = "custom:layers=L,d=C,heads=H,seq=T,vocab=V[,tied=1]";

std::string allowed_models() {
  return "tiny, bytes, gpt2-124m (alias gpt2), gpt2-350m (gpt2-medium), gpt2-774m (gpt2-large), "
         "gpt2-1558m (gpt2-xl), " + std::string(kCustomHelp);
}

GptConfig custom_model(const std::string& spec) {
  auto fail = [&](const std::string& why) {
    throw std::invalid_argument("model '" + spec + "': " + why + " (write " + kCustomHelp + ")");
  };
  GptConfig cfg;
  cfg.name = spec;
  std::map<std::string, long long> kv;
  const std::string body = spec.substr(7);
  size_t at = 0;
  while (at <= body.size()) {
    size_t comma = body.find(',', at);
    if (comma == std::string::npos) comma = body.size();
    const std::string item = body.substr(at, comma - at);
    at = comma + 1;
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    static const char* keys[] = {"layers", "d", "heads", "seq", "vocab", "tied"};
    if (eq == std::string::npos || std::find(std::begin(keys), std::end(keys), key) == std::end(keys))
      fail("'" + item + "' is not KEY=VALUE with KEY one of layers, d, heads, seq, vocab, tied");
    const std::string val = item.substr(eq + 1);
    if (val.empty() || val.size() > 9 || val.find_first_not_of("0123456789") != std::string::npos)
      fail(key + "='" + val + "' is not a whole number");
    if (kv.count(key)) fail(key + " given twice");
    kv[key] = std::stoll(val);
  }
  for (const char* k : {"layers", "d", "heads", "seq", "vocab"}) {
    if (!kv.count(k)) fail(std::string("needs ") + k + "=N");
    if (kv[k] < 1) fail(std::string(k) + " must be >= 1");
  }
  if (kv.count("tied") && kv["tied"] > 1) fail("tied must be 0 or 1");
  cfg.layers = static_cast<int>(kv["layers"]);
  cfg.channels = static_cast<int>(kv["d"]);
  cfg.heads = static_cast<int>(kv["heads"]);
  cfg.seq_len = static_cast<int>(kv["seq"]);
  cfg.vocab_size = static_cast<int>(kv["vocab"]);
  cfg.padded_vocab = static_cast<int>((kv["vocab"] + 127) / 128 * 128);  // as llm.c pads
  cfg.tied_embeddings = kv.count("tied") && kv["tied"] == 1;
  if (cfg.channels % cfg.heads != 0)
    fail("d=" + std::to_string(cfg.channels) + " must be a multiple of heads=" + std::to_string(cfg.heads));
  return cfg;
}

}  // namespace

GptConfig parse_model(const std::string& spec) {
  GptConfig cfg;
  auto gpt2 = [&](int L, int C, int H, bool tied, const char* name) {
    cfg.name = name;
    cfg.seq_len = 1024;
    cfg.layers = L;
    cfg.channels = C;
    cfg.heads = H;
    cfg.tied_embeddings = tied;
  };
  if (spec == "tiny") {
    cfg.name = "tiny";
    cfg.seq_len = 64;
    cfg.layers = 2;
    cfg.channels = 64;
    cfg.heads = 4;
    cfg.tied_embeddings = false;
  } else if (spec == "bytes") {
    cfg.name = "bytes";
    cfg.seq_len = 64;
    cfg.layers = 8;
    cfg.channels = 64;
    cfg.heads = 4;
    cfg.vocab_size = 256;
    cfg.padded_vocab = 256;
    cfg.tied_embeddings = false;
  } else if (spec == "gpt2-124m" || spec == "gpt2") {
    gpt2(12, 768, 12, true, "gpt2-124m");
  } else if (spec == "gpt2-350m" || spec == "gpt2-medium") {
    gpt2(24, 1024, 16, false, "gpt2-350m");
  } else if (spec == "gpt2-774m" || spec == "gpt2-large") {
    gpt2(36, 1280, 20, true, "gpt2-774m");
  } else if (spec == "gpt2-1558m" || spec == "gpt2-xl") {
    gpt2(48, 1600, 25, true, "gpt2-1558m");
  } else if (spec.rfind("custom:", 0) == 0) {
    cfg = custom_model(spec);
  } else {
    throw std::invalid_argument("unknown model preset '" + spec + "' (allowed: " + allowed_models() + ")");
  }
  validate(cfg);
  return cfg;
}

GptConfig preset(const std::string& name) { return parse_model(name); }

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
  int64_t n = 0;
  for (int u = 0; u < num_units(cfg); ++u) n += unit_parameters(cfg, u);
  return n;
}

double flops_per_token(const GptConfig& cfg, int seq_len) {
  const double T = seq_len > 0 ? seq_len : cfg.seq_len;
  return 6.0 * static_cast<double>(num_parameters(cfg)) +
         6.0 * cfg.layers * static_cast<double>(cfg.channels) * T;
}

int num_units(const GptConfig& cfg) { return 2 * cfg.layers + 2; }

UnitKind unit_kind(const GptConfig& cfg, int unit) {
  const int U = num_units(cfg);
  if (unit < 0 || unit >= U)
    throw std::out_of_range("unit " + std::to_string(unit) + " outside the model's " + std::to_string(U) +
                            " units");
  if (unit == 0) return UnitKind::kEmbedding;
  if (unit == U - 1) return UnitKind::kHead;
  return unit % 2 == 1 ? UnitKind::kAttention : UnitKind::kMlp;
}

int unit_layer(int unit) { return unit >= 1 ? (unit - 1) / 2 : -1; }

std::string unit_name(const GptConfig& cfg, int unit) {
  switch (unit_kind(cfg, unit)) {
    case UnitKind::kEmbedding:
      return "embedding";
    case UnitKind::kHead:
      return "head";
    case UnitKind::kAttention:
      return "h." + std::to_string(unit_layer(unit)) + ".attn";
    case UnitKind::kMlp:
      return "h." + std::to_string(unit_layer(unit)) + ".mlp";
  }
  return "?";
}

UnitFlops unit_flops(const GptConfig& cfg, int unit, int seq_len) {
  const double C = cfg.channels, V = cfg.vocab_size, T = seq_len > 0 ? seq_len : cfg.seq_len;
  UnitFlops f;
  switch (unit_kind(cfg, unit)) {
    case UnitKind::kEmbedding:
      f.elementwise = 2 * C;  // two row reads and an add per channel
      break;
    case UnitKind::kAttention:
      f.gemm = 2 * (3 * C * C + C * C);
      f.attention = 4 * T * C;
      break;
    case UnitKind::kMlp:
      f.gemm = 2 * (4 * C * C + 4 * C * C);
      break;
    case UnitKind::kHead:
      f.gemm = 2 * C * V;
      f.elementwise = 5 * V + 8 * C;
      break;
  }
  return f;
}

int64_t unit_parameters(const GptConfig& cfg, int unit, bool stored) {
  const int64_t V = cfg.vocab_size, C = cfg.channels, T = cfg.seq_len;
  switch (unit_kind(cfg, unit)) {
    case UnitKind::kEmbedding:
      return V * C + T * C;
    case UnitKind::kAttention:
      return 2 * C + (3 * C * C + 3 * C) + (C * C + C);
    case UnitKind::kMlp:
      return 2 * C + (4 * C * C + 4 * C) + (4 * C * C + C);
    case UnitKind::kHead:
      return 2 * C + (cfg.tied_embeddings && !stored ? 0 : V * C);
  }
  return 0;
}

int64_t unit_matmul_parameters(const GptConfig& cfg, int unit) {
  const int64_t V = cfg.vocab_size, C = cfg.channels;
  switch (unit_kind(cfg, unit)) {
    case UnitKind::kEmbedding: return 0;
    case UnitKind::kAttention: return (3 * C * C + 3 * C) + (C * C + C);
    case UnitKind::kMlp: return (4 * C * C + 4 * C) + (4 * C * C + C);
    case UnitKind::kHead: return V * C;
  }
  return 0;
}

std::string describe(const GptConfig& cfg) {
  return "L" + std::to_string(cfg.layers) + " C" + std::to_string(cfg.channels) + " H" +
         std::to_string(cfg.heads) + " T" + std::to_string(cfg.seq_len) + " V" +
         std::to_string(cfg.vocab_size) + (cfg.tied_embeddings ? " tied" : " untied");
}

}  // namespace paci
