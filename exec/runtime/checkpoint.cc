#include "exec/runtime/checkpoint.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace paci {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string stage_file(const std::string& dir, int s) { return fmt::format("{}/stage-{}.bin", dir, s); }

struct StageHeader {
  int32_t magic = kCheckpointMagic;
  int32_t version = kCheckpointVersion;
  int32_t stage = 0;
  int32_t reserved = 0;
  int64_t count = 0;  // floats in each of params, m, v
};

}  // namespace

void save_checkpoint(const std::string& dir, const CheckpointMeta& meta, const Snapshot& snap,
                     RankGroup* group) {
  const bool root = !group || group->rank() == 0;
  json j;
  j["format"] = kCheckpointVersion;
  j["kind"] = "paci-checkpoint";
  const GptConfig& m = meta.model;
  j["model"] = {{"vocab_size", m.vocab_size}, {"padded_vocab", m.padded_vocab}, {"seq_len", m.seq_len},
                {"layers", m.layers},         {"channels", m.channels},         {"heads", m.heads},
                {"tied_embeddings", m.tied_embeddings}};
  json parts = json::array();
  for (const auto& p : meta.partition)
    parts.push_back({p.first_layer, p.last_layer, p.has_embedding, p.has_head});
  j["partition"] = parts;
  j["schedule"] = {{"name", meta.schedule}, {"stages", meta.stages}, {"microbatches", meta.microbatches},
                   {"virtual_stages", meta.virtual_stages}, {"accum", meta.accum}};
  j["micro_batch"] = meta.micro_batch;
  j["seq_len"] = meta.seq_len;
  j["step"] = meta.step;
  j["total_steps"] = meta.total_steps;
  j["segment_steps"] = meta.segment_steps;
  j["data_position"] = meta.data_position;
  j["seed"] = meta.seed;
  const AdamWConfig& a = meta.adamw;
  j["adamw"] = {{"lr", a.lr}, {"beta1", a.beta1}, {"beta2", a.beta2}, {"eps", a.eps},
                {"weight_decay", a.weight_decay}, {"warmup_steps", a.warmup_steps},
                {"total_steps", a.total_steps}, {"min_lr_fraction", a.min_lr_fraction}};

  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  if (root) fs::remove_all(tmp, ec);
  if (group) group->barrier();
  fs::create_directories(tmp, ec);
  if (ec) throw CheckpointError(fmt::format("{}: cannot create ({})", tmp, ec.message()));
  if (root) {
    std::ofstream out(tmp + "/checkpoint.json");
    out << j.dump(1) << "\n";
    if (!out) throw CheckpointError(fmt::format("{}/checkpoint.json: write failed", tmp));
  }
  for (size_t s = 0; s < snap.params.size(); ++s) {
    if (group && snap.params[s].empty()) continue;  // another rank's stage
    StageHeader h;
    h.stage = static_cast<int32_t>(s);
    h.count = static_cast<int64_t>(snap.params[s].size());
    std::ofstream out(stage_file(tmp, s), std::ios::binary);
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    for (const auto* vec : {&snap.params[s], &snap.m[s], &snap.v[s]})
      out.write(reinterpret_cast<const char*>(vec->data()), vec->size() * sizeof(float));
    if (!out) throw CheckpointError(fmt::format("{}: write failed (disk full?)", stage_file(tmp, s)));
  }
  if (group) group->barrier();
  if (!root) {
    group->barrier();
    return;
  }
  // Swap the new directory in; the old one goes only after the new one is complete.
  const std::string old = dir + ".old";
  fs::remove_all(old, ec);
  if (fs::exists(dir)) fs::rename(dir, old, ec);
  fs::rename(tmp, dir, ec);
  if (ec) throw CheckpointError(fmt::format("{}: cannot move the new checkpoint into place ({})", dir, ec.message()));
  fs::remove_all(old, ec);
  if (group) group->barrier();
}

void load_checkpoint(const std::string& dir, CheckpointMeta& meta, Snapshot& snap) {
  const std::string path = dir + "/checkpoint.json";
  std::ifstream in(path);
  if (!in)
    throw CheckpointError(fmt::format("{}: no checkpoint here (expected checkpoint.json written by "
                                      "paci train --save)", dir));
  json j;
  try {
    j = json::parse(in);
    if (j.at("format").get<int>() != kCheckpointVersion)
      throw CheckpointError(fmt::format("{}: checkpoint format {} is not supported (this paci "
                                        "reads {})", path, j.at("format").get<int>(), kCheckpointVersion));
    const json& m = j.at("model");
    meta.model.vocab_size = m.at("vocab_size");
    meta.model.padded_vocab = m.at("padded_vocab");
    meta.model.seq_len = m.at("seq_len");
    meta.model.layers = m.at("layers");
    meta.model.channels = m.at("channels");
    meta.model.heads = m.at("heads");
    meta.model.tied_embeddings = m.at("tied_embeddings");
    meta.partition.clear();
    for (const auto& p : j.at("partition"))
      meta.partition.push_back({p.at(0).get<int>(), p.at(1).get<int>(), p.at(2).get<bool>(), p.at(3).get<bool>()});
    const json& s = j.at("schedule");
    meta.schedule = s.at("name");
    meta.stages = s.at("stages");
    meta.microbatches = s.at("microbatches");
    meta.virtual_stages = s.at("virtual_stages");
    meta.accum = s.at("accum");
    meta.micro_batch = j.at("micro_batch");
    meta.seq_len = j.at("seq_len");
    meta.step = j.at("step");
    meta.total_steps = j.at("total_steps");
    meta.segment_steps = j.at("segment_steps");
    meta.data_position = j.at("data_position");
    meta.seed = j.at("seed");
    const json& a = j.at("adamw");
    meta.adamw.lr = a.at("lr");
    meta.adamw.beta1 = a.at("beta1");
    meta.adamw.beta2 = a.at("beta2");
    meta.adamw.eps = a.at("eps");
    meta.adamw.weight_decay = a.at("weight_decay");
    meta.adamw.warmup_steps = a.at("warmup_steps");
    meta.adamw.total_steps = a.at("total_steps");
    meta.adamw.min_lr_fraction = a.at("min_lr_fraction");
  } catch (const json::exception& e) {
    throw CheckpointError(fmt::format("{}: malformed checkpoint metadata ({})", path, e.what()));
  }
  const size_t S = meta.partition.size();
  snap = Snapshot{};
  snap.version = meta.step;
  snap.params.resize(S), snap.m.resize(S), snap.v.resize(S);
  for (size_t s = 0; s < S; ++s) {
    const std::string f = stage_file(dir, static_cast<int>(s));
    std::ifstream bin(f, std::ios::binary);
    if (!bin) throw CheckpointError(fmt::format("{}: missing stage file", f));
    StageHeader h;
    bin.read(reinterpret_cast<char*>(&h), sizeof h);
    if (!bin || h.magic != kCheckpointMagic)
      throw CheckpointError(fmt::format("{}: bad magic: not a paci checkpoint stage file", f));
    if (h.version != kCheckpointVersion)
      throw CheckpointError(fmt::format("{}: version {} (this paci reads {})", f, h.version, kCheckpointVersion));
    if (h.stage != static_cast<int32_t>(s) || h.count < 0 || h.count > (int64_t{1} << 34))
      throw CheckpointError(fmt::format("{}: header names stage {} with {} parameters: corrupt", f, h.stage, h.count));
    const auto expect = static_cast<std::uintmax_t>(sizeof h + 3 * h.count * sizeof(float));
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec || size != expect)
      throw CheckpointError(fmt::format("{}: {} bytes, expected {} for {} parameters: truncated or "
                                        "corrupt", f, size, expect, h.count));
    for (auto* vec : {&snap.params[s], &snap.m[s], &snap.v[s]}) {
      vec->resize(h.count);
      bin.read(reinterpret_cast<char*>(vec->data()), h.count * sizeof(float));
    }
  }
}

}  // namespace paci
