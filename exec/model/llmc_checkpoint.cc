#include "exec/model/llmc_checkpoint.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include "exec/model/param_layout.h"

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
  int next = 0;
  for (size_t s = 0; s < parts.size(); ++s) {
    const StagePartition& p = parts[s];
    if (p.first_layer != next || p.has_embedding != (s == 0) ||
        p.has_head != (s + 1 == parts.size())) {
      throw std::invalid_argument("llm.c checkpoint: stage " + std::to_string(s) +
                                  " does not continue a partition of the whole model");
    }
    next = p.last_layer + 1;
  }
  if (next != cfg.layers) {
    throw std::invalid_argument("llm.c checkpoint: partitions cover " + std::to_string(next) +
                                " of " + std::to_string(cfg.layers) + " layers");
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

GptConfig read_llmc_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("llm.c checkpoint: cannot open " + path);
  int32_t header[kHeaderInts];
  in.read(reinterpret_cast<char*>(header), sizeof(header));
  if (in.gcount() != static_cast<std::streamsize>(sizeof(header))) {
    throw std::runtime_error("llm.c checkpoint: " + path +
                             " is shorter than the 1024-byte header; not a model file");
  }
  if (header[0] != kLlmcCheckpointMagic) {
    throw std::runtime_error("llm.c checkpoint: " + path + " has magic " +
                             std::to_string(header[0]) + ", expected " +
                             std::to_string(kLlmcCheckpointMagic) +
                             " (an llm.c GPT-2 model file; token shards have magic 20240520)");
  }
  if (header[1] != kLlmcCheckpointVersionFp32) {
    throw std::runtime_error("llm.c checkpoint: " + path + " has version " +
                             std::to_string(header[1]) + "; only version 3 (fp32) is " +
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
    throw std::runtime_error("llm.c checkpoint: " + path + " has an impossible shape: " + e.what());
  }
  in.seekg(0, std::ios::end);
  const auto bytes = static_cast<uint64_t>(in.tellg());
  const uint64_t expected = sizeof(header) + file_param_count(cfg) * sizeof(float);
  if (bytes != expected) {
    throw std::runtime_error("llm.c checkpoint: " + path + " has " + std::to_string(bytes) +
                             " bytes but its header (" + describe(cfg) + ", Vp " +
                             std::to_string(cfg.padded_vocab) + ") implies " +
                             std::to_string(expected) + "; the file is truncated or corrupt");
  }
  return cfg;
}

void load_llmc_checkpoint(const std::string& path, const GptConfig& cfg,
                          const std::vector<StagePartition>& parts,
                          const std::vector<float*>& stage_params) {
  validate(cfg);
  const GptConfig file = read_llmc_config(path);
  if (file.seq_len != cfg.seq_len || file.vocab_size != cfg.vocab_size ||
      file.padded_vocab != cfg.padded_vocab || file.layers != cfg.layers ||
      file.heads != cfg.heads || file.channels != cfg.channels || !cfg.tied_embeddings) {
    throw std::runtime_error("llm.c checkpoint: " + path + " holds a " + describe(file) +
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
