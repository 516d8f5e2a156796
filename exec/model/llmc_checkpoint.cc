#include "exec/model/llmc_checkpoint.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include "exec/model/param_layout.h"
#include "schedules/files.h"

namespace paci {
namespace {

constexpr int kHeaderInts = 256;

// Where one named tensor of the whole model lives among the stage buffers.
struct Location {
  int stage;
  size_t offset;
  size_t size;
};

void check_parts(const GptConfig& cfg, const std::vector<StagePartition>& parts, size_t buffers) {
  if (parts.empty() || parts.size() != buffers) {
    throw std::invalid_argument("llm.c checkpoint: " + std::to_string(parts.size()) +
                                " stage partitions but " + std::to_string(buffers) +
                                " parameter buffers");
  }
  try {
    check_partition(cfg, parts);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("llm.c checkpoint: ") + e.what());
  }
}

std::map<std::string, Location> locate_all(const GptConfig& cfg,
                                           const std::vector<StagePartition>& parts) {
  std::map<std::string, Location> where;
  for (size_t s = 0; s < parts.size(); ++s) {
    for (const TensorInfo& t : make_param_layout(cfg, parts[s]).tensors) {
      where[t.name] = Location{static_cast<int>(s), t.offset, t.size};
    }
  }
  return where;
}

// File order of the tensors after wte / wpe, each as (name, elements per layer or total).
std::vector<std::string> layer_tensor_order() {
  return {"ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
          "ln2w", "ln2b", "fcw",  "fcb",  "fcprojw",  "fcprojb"};
}

size_t file_param_count(const GptConfig& cfg) {
  const size_t Vp = cfg.padded_vocab, C = cfg.channels, T = cfg.seq_len, L = cfg.layers;
  const size_t per_layer =
      2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C;
  return Vp * C + T * C + L * per_layer + 2 * C;
}

// Visits the file's tensors in order: fn(name or "" for padding, elements).
template <typename Fn>
void for_each_file_tensor(const GptConfig& cfg, Fn fn) {
  const size_t C = cfg.channels;
  fn(std::string("wte"), static_cast<size_t>(cfg.vocab_size) * C);
  fn(std::string(), static_cast<size_t>(cfg.padded_vocab - cfg.vocab_size) * C);
  fn(std::string("wpe"), static_cast<size_t>(cfg.seq_len) * C);
  for (const std::string& kind : layer_tensor_order()) {
    for (int l = 0; l < cfg.layers; ++l) fn("h." + std::to_string(l) + "." + kind, size_t{0});
  }
  fn(std::string("lnfw"), C);
  fn(std::string("lnfb"), C);
}

}  // namespace

void save_llmc_checkpoint(const std::string& path, const GptConfig& cfg,
                          const std::vector<StagePartition>& parts,
                          const std::vector<const float*>& stage_params) {
  validate(cfg);
  if (!cfg.tied_embeddings) {
    throw std::invalid_argument(
        "llm.c checkpoint: refusing to save an untied model to " + path +
        ": llm.c's format ties the LM head to wte, so the trained lm_head would be lost");
  }
  check_parts(cfg, parts, stage_params.size());
  const auto where = locate_all(cfg, parts);
  {
    const Location& w = where.at("wte");
    const Location& h = where.at("lm_head");
    if (std::memcmp(stage_params[w.stage] + w.offset, stage_params[h.stage] + h.offset,
                    w.size * sizeof(float)) != 0) {
      throw std::logic_error(
          "llm.c checkpoint: the tied lm_head copy differs from wte; sum their gradients "
          "with sum_tied_embedding_grads before every optimizer step");
    }
  }

  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("llm.c checkpoint: cannot open " + tmp + " for writing");
  int32_t header[kHeaderInts] = {0};
  header[0] = kLlmcCheckpointMagic;
  header[1] = kLlmcCheckpointVersionFp32;
  header[2] = cfg.seq_len;
  header[3] = cfg.vocab_size;
  header[4] = cfg.layers;
  header[5] = cfg.heads;
  header[6] = cfg.channels;
  header[7] = cfg.padded_vocab;
  out.write(reinterpret_cast<const char*>(header), sizeof(header));
  const std::vector<float> zeros(cfg.channels, 0.0f);
  for_each_file_tensor(cfg, [&](const std::string& name, size_t n) {
    if (name.empty()) {
      for (size_t i = 0; i < n; i += zeros.size()) {
        out.write(reinterpret_cast<const char*>(zeros.data()),
                  static_cast<std::streamsize>(std::min(zeros.size(), n - i) * sizeof(float)));
      }
      return;
    }
    const Location& loc = where.at(name);
    out.write(reinterpret_cast<const char*>(stage_params[loc.stage] + loc.offset),
              static_cast<std::streamsize>(loc.size * sizeof(float)));
  });
  out.close();
  if (!out) {
    std::remove(tmp.c_str());
    throw std::runtime_error("llm.c checkpoint: write to " + tmp + " failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("llm.c checkpoint: cannot rename " + tmp + " to " + path);
  }
}

GptConfig parse_llmc_header(const unsigned char* bytes, size_t size, uint64_t file_bytes,
                            const std::string& path) {
  int32_t header[kHeaderInts];
  if (size < sizeof(header) || file_bytes < sizeof(header)) {
    throw LlmcError("llm.c checkpoint: " + path +
                    " is shorter than the 1024-byte header; not a model file");
  }
  std::memcpy(header, bytes, sizeof(header));
  if (header[0] != kLlmcCheckpointMagic) {
    throw LlmcError("llm.c checkpoint: " + path + " has magic " + std::to_string(header[0]) +
                    ", expected " + std::to_string(kLlmcCheckpointMagic) +
                    " (an llm.c GPT-2 model file; token shards have magic 20240520)");
  }
  if (header[1] != kLlmcCheckpointVersionFp32) {
    throw LlmcError("llm.c checkpoint: " + path + " has version " + std::to_string(header[1]) +
                    "; only version 3 (fp32) is " +
                    "supported (version 5 is bf16: re-export the model in fp32)");
  }
  GptConfig cfg;
  cfg.seq_len = header[2];
  cfg.vocab_size = header[3];
  cfg.layers = header[4];
  cfg.heads = header[5];
  cfg.channels = header[6];
  cfg.padded_vocab = header[7];
  cfg.tied_embeddings = true;
  try {
    validate(cfg);
  } catch (const std::invalid_argument& e) {
    throw LlmcError("llm.c checkpoint: " + path + " has an impossible shape: " + e.what());
  }
  // The size the header implies, without overflow (every field is an int32 here).
  using u128 = unsigned __int128;
  const u128 Vp = static_cast<u128>(cfg.padded_vocab), C = static_cast<u128>(cfg.channels),
             T = static_cast<u128>(cfg.seq_len), L = static_cast<u128>(cfg.layers);
  const u128 per_layer = 2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C;
  const u128 expected = sizeof(header) + (Vp * C + T * C + L * per_layer + 2 * C) * sizeof(float);
  if (expected != static_cast<u128>(file_bytes)) {
    const std::string implied = expected > static_cast<u128>(UINT64_MAX)
                                    ? std::string("more than 2^64")
                                    : std::to_string(static_cast<uint64_t>(expected));
    throw LlmcError("llm.c checkpoint: " + path + " has " + std::to_string(file_bytes) +
                    " bytes but its header (" + describe(cfg) + ", Vp " +
                    std::to_string(cfg.padded_vocab) + ") implies " + implied +
                    "; the file is truncated or corrupt");
  }
  return cfg;
}

GptConfig read_llmc_config(const std::string& path) {
  try {
    check_regular_file(path, "llm.c checkpoint");
  } catch (const InputError& e) {
    throw LlmcError(e.what());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LlmcError("llm.c checkpoint: cannot open " + path);
  unsigned char header[kHeaderInts * sizeof(int32_t)];
  in.read(reinterpret_cast<char*>(header), sizeof(header));
  const size_t got = static_cast<size_t>(std::max<std::streamsize>(in.gcount(), 0));
  in.clear();
  in.seekg(0, std::ios::end);
  const auto bytes = static_cast<uint64_t>(std::max<std::streamoff>(in.tellg(), 0));
  return parse_llmc_header(header, got, bytes, path);
}

void load_llmc_checkpoint(const std::string& path, const GptConfig& cfg,
                          const std::vector<StagePartition>& parts,
                          const std::vector<float*>& stage_params) {
  validate(cfg);
  const GptConfig file = read_llmc_config(path);
  if (file.seq_len != cfg.seq_len || file.vocab_size != cfg.vocab_size ||
      file.padded_vocab != cfg.padded_vocab || file.layers != cfg.layers ||
      file.heads != cfg.heads || file.channels != cfg.channels || !cfg.tied_embeddings) {
    throw LlmcError("llm.c checkpoint: " + path + " holds a " + describe(file) +
                             " model (Vp " + std::to_string(file.padded_vocab) +
                             ") but the model to load is " + describe(cfg) + " (Vp " +
                             std::to_string(cfg.padded_vocab) + ")");
  }
  check_parts(cfg, parts, stage_params.size());
  const auto where = locate_all(cfg, parts);
  std::ifstream in(path, std::ios::binary);
  in.seekg(kHeaderInts * sizeof(int32_t));
  for_each_file_tensor(cfg, [&](const std::string& name, size_t n) {
    if (name.empty()) {
      in.seekg(static_cast<std::streamoff>(n * sizeof(float)), std::ios::cur);
      return;
    }
    const Location& loc = where.at(name);
    in.read(reinterpret_cast<char*>(stage_params[loc.stage] + loc.offset),
            static_cast<std::streamsize>(loc.size * sizeof(float)));
  });
  if (!in) throw std::runtime_error("llm.c checkpoint: reading " + path + " failed");
  const Location& w = where.at("wte");
  const Location& h = where.at("lm_head");
  std::memcpy(stage_params[h.stage] + h.offset, stage_params[w.stage] + w.offset,
              w.size * sizeof(float));
}

}  // namespace paci
