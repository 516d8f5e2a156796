#include "exec/model/param_layout.h"

#include <algorithm>
#include <cmath>

namespace paci {
namespace {

const char* kind_suffix(ParamKind k) {
  switch (k) {
    case ParamKind::kLn1w:
      return "ln1w";
    case ParamKind::kLn1b:
      return "ln1b";
    case ParamKind::kQkvw:
      return "qkvw";
    case ParamKind::kQkvb:
      return "qkvb";
    case ParamKind::kAttprojw:
      return "attprojw";
    case ParamKind::kAttprojb:
      return "attprojb";
    case ParamKind::kLn2w:
      return "ln2w";
    case ParamKind::kLn2b:
      return "ln2b";
    case ParamKind::kFcw:
      return "fcw";
    case ParamKind::kFcb:
      return "fcb";
    case ParamKind::kFcprojw:
      return "fcprojw";
    case ParamKind::kFcprojb:
      return "fcprojb";
    case ParamKind::kWte:
      return "wte";
    case ParamKind::kWpe:
      return "wpe";
    case ParamKind::kLnfw:
      return "lnfw";
    case ParamKind::kLnfb:
      return "lnfb";
    case ParamKind::kLmHead:
      return "lm_head";
  }
  return "?";
}

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

NormalStream::NormalStream(uint64_t seed, uint64_t stream) {
  uint64_t s = seed;
  state_ = splitmix64(s) ^ (stream * 0xD1B54A32D192ED03ULL);
  splitmix64(state_);
}

uint64_t NormalStream::next_u64() { return splitmix64(state_); }

double NormalStream::next_uniform() {
  // 53 random bits -> (0, 1].
  return (static_cast<double>(next_u64() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

double NormalStream::next() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = next_uniform(), u2 = next_uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double a = 2.0 * M_PI * u2;
  spare_ = r * std::sin(a);
  has_spare_ = true;
  return r * std::cos(a);
}

const TensorInfo* ParamLayout::find(const std::string& name) const {
  for (const TensorInfo& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

ParamLayout make_param_layout(const GptConfig& cfg, const StagePartition& stage) {
  validate(cfg);
  const int V = cfg.vocab_size, C = cfg.channels, T = cfg.seq_len, L = cfg.layers;
  ParamLayout layout;
  auto add = [&](ParamKind kind, int layer, int global_id, int rows, int cols, bool is_2d) {
    TensorInfo t;
    t.kind = kind;
    t.layer = layer;
    t.global_id = global_id;
    t.name = layer >= 0 ? "h." + std::to_string(layer) + "." + kind_suffix(kind)
                        : std::string(kind_suffix(kind));
    t.rows = rows;
    t.cols = cols;
    t.size = static_cast<size_t>(rows) * cols;
    t.is_2d = is_2d;
    t.offset = (layout.total + kParamAlignment - 1) / kParamAlignment * kParamAlignment;
    layout.total = t.offset + t.size;
    layout.tensors.push_back(t);
  };
  if (stage.has_embedding) {
    add(ParamKind::kWte, -1, 0, V, C, true);
    add(ParamKind::kWpe, -1, 1, T, C, true);
  }
  for (int l = stage.first_layer; l <= stage.last_layer; ++l) {
    const int id = 2 + l * kTensorsPerLayer;
    if (stage.has_attention(l)) {
      add(ParamKind::kLn1w, l, id + 0, 1, C, false);
      add(ParamKind::kLn1b, l, id + 1, 1, C, false);
      add(ParamKind::kQkvw, l, id + 2, 3 * C, C, true);
      add(ParamKind::kQkvb, l, id + 3, 1, 3 * C, false);
      add(ParamKind::kAttprojw, l, id + 4, C, C, true);
      add(ParamKind::kAttprojb, l, id + 5, 1, C, false);
    }
    if (stage.has_mlp(l)) {
      add(ParamKind::kLn2w, l, id + 6, 1, C, false);
      add(ParamKind::kLn2b, l, id + 7, 1, C, false);
      add(ParamKind::kFcw, l, id + 8, 4 * C, C, true);
      add(ParamKind::kFcb, l, id + 9, 1, 4 * C, false);
      add(ParamKind::kFcprojw, l, id + 10, C, 4 * C, true);
      add(ParamKind::kFcprojb, l, id + 11, 1, C, false);
    }
  }
  if (stage.has_head) {
    const int id = 2 + L * kTensorsPerLayer;
    add(ParamKind::kLnfw, -1, id, 1, C, false);
    add(ParamKind::kLnfb, -1, id + 1, 1, C, false);
    add(ParamKind::kLmHead, -1, id + 2, V, C, true);
    layout.tensors.back().tied_to_wte = cfg.tied_embeddings;
  }
  layout.total = (layout.total + kParamAlignment - 1) / kParamAlignment * kParamAlignment;
  return layout;
}

template <typename T>
void init_parameters(const GptConfig& cfg, const ParamLayout& layout, uint64_t seed, T* out) {
  for (size_t i = 0; i < layout.total; ++i) out[i] = T(0);
  const double residual_std = 0.02 / std::sqrt(2.0 * std::max(cfg.layers, 1));
  for (const TensorInfo& t : layout.tensors) {
    T* p = out + t.offset;
    switch (t.kind) {
      case ParamKind::kLn1w:
      case ParamKind::kLn2w:
      case ParamKind::kLnfw:
        for (size_t i = 0; i < t.size; ++i) p[i] = T(1);
        break;
      case ParamKind::kLn1b:
      case ParamKind::kLn2b:
      case ParamKind::kLnfb:
      case ParamKind::kQkvb:
      case ParamKind::kAttprojb:
      case ParamKind::kFcb:
      case ParamKind::kFcprojb:
        break;  // zero
      default: {
        const bool residual = t.kind == ParamKind::kAttprojw || t.kind == ParamKind::kFcprojw;
        const double stddev = residual ? residual_std : 0.02;
        // A tied head must start as an exact copy of wte: use wte's stream.
        NormalStream rng(seed, t.tied_to_wte ? 0 : static_cast<uint64_t>(t.global_id));
        for (size_t i = 0; i < t.size; ++i) p[i] = static_cast<T>(stddev * rng.next());
      }
    }
  }
}

template void init_parameters<float>(const GptConfig&, const ParamLayout&, uint64_t, float*);
template void init_parameters<double>(const GptConfig&, const ParamLayout&, uint64_t, double*);

}  // namespace paci
