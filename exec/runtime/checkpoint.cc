#include "exec/runtime/checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace paci {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kManifest = "checkpoint.json";

std::string stage_name(int s) { return fmt::format("stage-{}.bin", s); }
std::string step_name(int step) { return fmt::format("step-{:06}", step); }

struct StageHeader {
  int32_t magic = kCheckpointMagic;
  int32_t version = kCheckpointVersion;
  int32_t stage = 0;
  int32_t reserved = 0;
  int64_t count = 0;  // floats in each of params, m, v
};

// Fault injection for tests, kept in the writer: PACI_TEST_CHECKPOINT_KILL=POINT[@STEP]
// raises SIGKILL on this process when the save of STEP (any step without @) reaches POINT:
// "stages" (stage files written), "manifest" (manifest written, not yet renamed), "commit"
// (renamed into place, older ones not yet retired), "retire" (an older one renamed to
// *.del, not yet removed).
void maybe_die(const char* point, int step) {
  const char* env = std::getenv("PACI_TEST_CHECKPOINT_KILL");
  if (!env) return;
  std::string v = env;
  std::string at = v.substr(0, v.find('@'));
  if (at != point) return;
  if (v.find('@') != std::string::npos && std::atoi(v.c_str() + v.find('@') + 1) != step) return;
  std::fflush(nullptr);
  ::raise(SIGKILL);
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw CheckpointError(fmt::format("{}: cannot open to sync ({})", path, std::strerror(errno)));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL)
    throw CheckpointError(fmt::format("{}: fsync failed ({})", path, std::strerror(err)));
}

// Writes the pieces to `path` (created, truncated) and fsyncs it.
void write_file(const std::string& path, const std::vector<std::pair<const void*, size_t>>& parts) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw CheckpointError(fmt::format("{}: cannot create ({})", path, std::strerror(errno)));
  for (const auto& [data, n] : parts) {
    const char* p = static_cast<const char*>(data);
    size_t left = n;
    while (left > 0) {
      ssize_t w = ::write(fd, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        int err = errno;
        ::close(fd);
        throw CheckpointError(fmt::format("{}: write failed ({})", path, std::strerror(err)));
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    throw CheckpointError(fmt::format("{}: fsync failed ({})", path, std::strerror(err)));
  }
  if (::close(fd) != 0) throw CheckpointError(fmt::format("{}: close failed ({})", path, std::strerror(errno)));
}

bool is_step_dir_name(const std::string& n) {
  if (n.rfind("step-", 0) != 0 || n.size() < 6) return false;
  return std::all_of(n.begin() + 5, n.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Manifests are small; a larger (or non-regular) file is not one of ours.
constexpr uintmax_t kMaxManifestBytes = 16 << 20;

bool plausible_manifest(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && fs::file_size(path, ec) <= kMaxManifestBytes && !ec;
}

// An integer field in lo..hi (no float, no wrap); throws CheckpointError naming it.
int64_t integer(const json& obj, const char* key, int64_t lo, int64_t hi, const std::string& path) {
  const json& v = obj.at(key);
  bool ok = v.is_number_integer();
  int64_t x = 0;
  if (ok && v.is_number_unsigned()) ok = v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX);
  if (ok) x = v.get<int64_t>();
  if (!ok || x < lo || x > hi)
    throw CheckpointError(fmt::format("{}: field '{}' must be an integer in {}..{} (got {}): corrupt", path, key,
                                      lo, hi, v.dump().substr(0, 40)));
  return x;
}

double number(const json& obj, const char* key, const std::string& path) {
  const json& v = obj.at(key);
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    throw CheckpointError(fmt::format("{}: field '{}' must be a finite number (got {}): corrupt", path, key,
                                      v.dump().substr(0, 40)));
  return v.get<double>();
}

// A manifest of ours (kind paci-checkpoint) in `dir`: its step, or -1.
int manifest_step(const std::string& dir) {
  if (!plausible_manifest(dir + "/" + kManifest)) return -1;
  std::ifstream in(dir + "/" + kManifest);
  if (!in) return -1;
  try {
    json j = json::parse(in);
    if (j.value("kind", "") != "paci-checkpoint") return -1;
    if (!j.at("step").is_number_integer()) return -1;
    const int64_t step = j.at("step").get<int64_t>();
    return step >= 0 && step <= INT32_MAX ? static_cast<int>(step) : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

json meta_json(const CheckpointMeta& meta) {
  json j;
  j["format"] = kCheckpointVersion;
  j["kind"] = "paci-checkpoint";
  const GptConfig& m = meta.model;
  j["model"] = {{"vocab_size", m.vocab_size}, {"padded_vocab", m.padded_vocab}, {"seq_len", m.seq_len},
                {"layers", m.layers},         {"channels", m.channels},         {"heads", m.heads},
                {"tied_embeddings", m.tied_embeddings}};
  json parts = json::array();
  for (const auto& p : meta.partition)
    parts.push_back({p.first_layer, p.last_layer, p.has_embedding, p.has_head, p.starts_with_mlp,
                     p.ends_with_attention});
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
  return j;
}

std::string hex64(uint64_t h) { return fmt::format("{:016x}", h); }

}  // namespace

uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

void check_checkpoint_target(const std::string& dir) {
  std::error_code ec;
  fs::file_status st = fs::symlink_status(dir, ec);
  if (fs::exists(st) && fs::is_symlink(st)) st = fs::status(dir, ec);
  std::string probe_dir;
  if (!fs::exists(st)) {
    // Created at the first save: the nearest existing ancestor must be a writable folder.
    fs::path p = fs::absolute(dir, ec).parent_path();
    while (!p.empty() && !fs::exists(p, ec) && p != p.parent_path()) p = p.parent_path();
    if (!fs::is_directory(p, ec))
      throw CheckpointError(fmt::format("--save {}: {} is not a folder; give a new or empty folder or a paci "
                                        "checkpoint folder", dir, p.string()));
    probe_dir = p.string();
  } else if (!fs::is_directory(st)) {
    throw CheckpointError(fmt::format("--save {}: exists and is not a folder (refusing to replace it); give a "
                                      "new or empty folder or a paci checkpoint folder", dir));
  } else {
    bool ours = manifest_step(dir) >= 0, other = false;
    std::string example;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string n = e.path().filename().string();
      std::string base = n;
      for (const char* suf : {".tmp", ".del"})
        if (base.size() > 4 && base.compare(base.size() - 4, 4, suf) == 0) base.resize(base.size() - 4);
      if (is_step_dir_name(base) && e.is_directory()) {
        if (manifest_step(e.path().string()) >= 0) ours = true;
        continue;
      }
      if (!other) example = n;
      other = true;
    }
    if (ec) throw CheckpointError(fmt::format("--save {}: cannot list the folder ({})", dir, ec.message()));
    if (other && !ours)
      throw CheckpointError(fmt::format("--save {}: a folder that is not a paci checkpoint (it holds '{}'); give a "
                                        "new or empty folder or a paci checkpoint folder", dir, example));
    probe_dir = dir;
  }
  std::string probe = probe_dir + "/.paci-write-probe-XXXXXX";
  int fd = ::mkstemp(probe.data());
  if (fd < 0)
    throw CheckpointError(fmt::format("--save {}: cannot write in {} ({})", dir, probe_dir, std::strerror(errno)));
  ::close(fd);
  ::unlink(probe.c_str());
}

std::string save_checkpoint(const std::string& dir, const CheckpointMeta& meta, const Snapshot& snap,
                            RankGroup* group) {
  const bool root = !group || group->rank() == 0;
  const std::string name = step_name(meta.step);
  const std::string tmp = fmt::format("{}/{}.tmp", dir, name);
  std::string final_dir = fmt::format("{}/{}", dir, name);
  const std::string what = fmt::format("the checkpoint of step {}", meta.step);
  std::error_code ec;
  if (root) {
    const bool existed = fs::is_directory(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) throw CheckpointError(fmt::format("{}: cannot create ({})", dir, ec.message()));
    if (!existed) {
      fs::path parent = fs::absolute(dir, ec).parent_path();
      if (!parent.empty()) fsync_path(parent.string(), true);
    }
    fs::remove_all(tmp, ec);
    fs::create_directory(tmp, ec);
    if (ec) throw CheckpointError(fmt::format("{}: cannot create ({})", tmp, ec.message()));
  }
  if (group) group->barrier(what + " (the barrier before writing the stage files)");
  // Each stage file: header, weights, m, v; fsync'd; its size and checksum for the manifest.
  json stages_mine = json::array();
  for (size_t s = 0; s < snap.params.size(); ++s) {
    if (group && snap.params[s].empty()) continue;  // another rank's stage
    StageHeader h;
    h.stage = static_cast<int32_t>(s);
    h.count = static_cast<int64_t>(snap.params[s].size());
    const size_t bytes = h.count * sizeof(float);
    uint64_t sum = fnv1a64(&h, sizeof h);
    for (const auto* vec : {&snap.params[s], &snap.m[s], &snap.v[s]}) sum = fnv1a64(vec->data(), bytes, sum);
    const std::string f = tmp + "/" + stage_name(static_cast<int>(s));
    write_file(f, {{&h, sizeof h}, {snap.params[s].data(), bytes}, {snap.m[s].data(), bytes},
                   {snap.v[s].data(), bytes}});
    stages_mine.push_back({{"stage", s}, {"file", stage_name(static_cast<int>(s))},
                           {"bytes", sizeof h + 3 * bytes}, {"fnv1a64", hex64(sum)}});
  }
  json stages = json::array();
  if (group) {
    std::vector<std::string> all = group->gather(stages_mine.dump(), 0, what + " (gathering the stage checksums)");
    for (const std::string& b : all)
      for (const json& e : json::parse(b)) stages.push_back(e);
  } else {
    stages = stages_mine;
  }
  maybe_die("stages", meta.step);
  if (root) {
    std::sort(stages.begin(), stages.end(),
              [](const json& a, const json& b) { return a.at("stage").get<int>() < b.at("stage").get<int>(); });
    json j = meta_json(meta);
    j["stage_files"] = stages;
    const std::string text = j.dump(1) + "\n";
    write_file(tmp + "/" + kManifest, {{text.data(), text.size()}});
    fsync_path(tmp, true);
    maybe_die("manifest", meta.step);
    // The commit: never over an existing folder (a checkpoint of the same step).
    for (int k = 1; fs::exists(final_dir, ec); ++k) final_dir = fmt::format("{}/{}.{}", dir, name, k);
    fs::rename(tmp, final_dir, ec);
    if (ec) throw CheckpointError(fmt::format("{}: cannot move the new checkpoint into place ({})", final_dir, ec.message()));
    fsync_path(dir, true);
    maybe_die("commit", meta.step);
    // Retire the older ones (and leftovers of interrupted saves), only paci's own folders.
    const std::string keep = fs::path(final_dir).filename().string();
    std::vector<fs::path> retire;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string n = e.path().filename().string();
      if (n == keep || !e.is_directory() || n.rfind("step-", 0) != 0) continue;
      retire.push_back(e.path());
    }
    for (const fs::path& p : retire) {
      std::string n = p.filename().string();
      fs::path del = p;
      if (n.size() < 4 || n.compare(n.size() - 4, 4, ".del") != 0) {
        del = p.string() + ".del";
        fs::rename(p, del, ec);
        if (ec) continue;
      }
      fsync_path(dir, true);
      maybe_die("retire", meta.step);
      fs::remove_all(del, ec);
    }
    fsync_path(dir, true);
  }
  if (group) group->barrier(what + " (the barrier after rank 0 completed it)");
  return final_dir;
}

std::string find_checkpoint(const std::string& dir) {
  std::error_code ec;
  std::string best;
  int best_step = -1;
  if (!fs::is_directory(dir, ec)) return "";
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step-", 0) != 0 || n.find(".tmp") != std::string::npos || n.find(".del") != std::string::npos)
      continue;
    const int step = manifest_step(e.path().string());
    if (step > best_step || (step == best_step && step >= 0 && n > fs::path(best).filename().string())) {
      best_step = step;
      best = e.path().string();
    }
  }
  // A checkpoint folder itself (DIR/step-N) given directly.
  if (best.empty() && manifest_step(dir) >= 0) return dir;
  return best;
}

std::string load_checkpoint(const std::string& top, CheckpointMeta& meta, Snapshot& snap) {
  const std::string dir = find_checkpoint(top);
  if (dir.empty())
    throw CheckpointError(fmt::format("{}: no checkpoint here (expected step-*/checkpoint.json written by "
                                      "paci train --save)", top));
  const std::string path = dir + "/" + kManifest;
  if (!plausible_manifest(path))
    throw CheckpointError(fmt::format("{}: not a regular file of at most {} bytes: not a paci manifest", path,
                                      kMaxManifestBytes));
  std::ifstream in(path);
  json j;
  std::vector<std::pair<std::string, uint64_t>> sums;  // per stage: file, checksum
  std::vector<uint64_t> sizes;
  try {
    j = json::parse(in);
    const int64_t format = integer(j, "format", 0, INT32_MAX, path);
    if (format != kCheckpointVersion)
      throw CheckpointError(fmt::format("{}: checkpoint format {} is not supported (this paci "
                                        "reads {})", path, format, kCheckpointVersion));
    constexpr int64_t kBig = INT32_MAX;
    const json& m = j.at("model");
    meta.model.vocab_size = static_cast<int>(integer(m, "vocab_size", 1, kBig, path));
    meta.model.padded_vocab = static_cast<int>(integer(m, "padded_vocab", 1, kBig, path));
    meta.model.seq_len = static_cast<int>(integer(m, "seq_len", 1, kBig, path));
    meta.model.layers = static_cast<int>(integer(m, "layers", 1, kBig, path));
    meta.model.channels = static_cast<int>(integer(m, "channels", 1, kBig, path));
    meta.model.heads = static_cast<int>(integer(m, "heads", 1, kBig, path));
    meta.model.tied_embeddings = m.at("tied_embeddings").get<bool>();
    meta.partition.clear();
    const json& parts = j.at("partition");
    if (!parts.is_array() || parts.empty() || parts.size() > 4096)
      throw CheckpointError(fmt::format("{}: field 'partition' must list 1..4096 stages: corrupt", path));
    for (const auto& p : parts) {
      // [first, last, embedding, head, starts_with_mlp, ends_with_attention]; manifests written
      // before stages could split a block have the first four only.
      if (!p.is_array() || (p.size() != 4 && p.size() != 6) || !p.at(0).is_number_integer() ||
          !p.at(1).is_number_integer() || p.at(0).get<int64_t>() < 0 || p.at(0).get<int64_t>() > kBig ||
          p.at(1).get<int64_t>() < -1 || p.at(1).get<int64_t>() > kBig)
        throw CheckpointError(fmt::format("{}: a 'partition' entry is not [first, last, embedding, head, "
                                          "starts_with_mlp, ends_with_attention]: corrupt", path));
      meta.partition.push_back({static_cast<int>(p.at(0).get<int64_t>()), static_cast<int>(p.at(1).get<int64_t>()),
                                p.at(2).get<bool>(), p.at(3).get<bool>(), p.size() == 6 && p.at(4).get<bool>(),
                                p.size() == 6 && p.at(5).get<bool>()});
    }
    try {
      validate(meta.model);
      check_partition(meta.model, meta.partition);
    } catch (const std::invalid_argument& e) {
      throw CheckpointError(fmt::format("{}: {}: corrupt", path, e.what()));
    }
    const json& s = j.at("schedule");
    meta.schedule = s.at("name").get<std::string>();
    meta.stages = static_cast<int>(integer(s, "stages", 1, kBig, path));
    meta.microbatches = static_cast<int>(integer(s, "microbatches", 1, kBig, path));
    meta.virtual_stages = static_cast<int>(integer(s, "virtual_stages", 1, kBig, path));
    meta.accum = static_cast<int>(integer(s, "accum", 1, kBig, path));
    meta.micro_batch = static_cast<int>(integer(j, "micro_batch", 1, kBig, path));
    meta.seq_len = static_cast<int>(integer(j, "seq_len", 1, kBig, path));
    meta.step = static_cast<int>(integer(j, "step", 0, kBig, path));
    meta.total_steps = static_cast<int>(integer(j, "total_steps", 0, kBig, path));
    meta.segment_steps = static_cast<int>(integer(j, "segment_steps", 0, kBig, path));
    meta.data_position = integer(j, "data_position", 0, INT64_MAX, path);
    {
      const json& seed = j.at("seed");
      if (!seed.is_number_integer() || (!seed.is_number_unsigned() && seed.get<int64_t>() < 0))
        throw CheckpointError(fmt::format("{}: field 'seed' must be an unsigned integer: corrupt", path));
      meta.seed = seed.get<uint64_t>();
    }
    const json& a = j.at("adamw");
    meta.adamw.lr = number(a, "lr", path);
    meta.adamw.beta1 = number(a, "beta1", path);
    meta.adamw.beta2 = number(a, "beta2", path);
    meta.adamw.eps = number(a, "eps", path);
    meta.adamw.weight_decay = number(a, "weight_decay", path);
    meta.adamw.warmup_steps = integer(a, "warmup_steps", 0, kBig, path);
    meta.adamw.total_steps = integer(a, "total_steps", 0, kBig, path);
    meta.adamw.min_lr_fraction = number(a, "min_lr_fraction", path);
    const json& files = j.at("stage_files");
    if (!files.is_array() || files.size() != meta.partition.size())
      throw CheckpointError(fmt::format("{}: {} stage files listed for {} stages: corrupt", path, files.size(),
                                        meta.partition.size()));
    for (size_t st = 0; st < files.size(); ++st) {
      const json& f = files.at(st);
      if (integer(f, "stage", 0, 4095, path) != static_cast<int64_t>(st) ||
          f.at("file").get<std::string>() != stage_name(st))
        throw CheckpointError(fmt::format("{}: stage_files[{}] does not name {}: corrupt", path, st, stage_name(st)));
      sizes.push_back(static_cast<uint64_t>(integer(f, "bytes", 0, INT64_MAX, path)));
      sums.emplace_back(f.at("file").get<std::string>(),
                        std::stoull(f.at("fnv1a64").get<std::string>(), nullptr, 16));
    }
  } catch (const json::exception& e) {
    throw CheckpointError(fmt::format("{}: malformed checkpoint metadata ({})", path, e.what()));
  } catch (const std::logic_error& e) {  // stoull
    throw CheckpointError(fmt::format("{}: malformed checkpoint metadata (a checksum is not hex)", path));
  }
  const size_t S = meta.partition.size();
  snap = Snapshot{};
  snap.version = meta.step;
  snap.params.resize(S), snap.m.resize(S), snap.v.resize(S);
  for (size_t s = 0; s < S; ++s) {
    const std::string f = dir + "/" + stage_name(static_cast<int>(s));
    std::error_code fec;
    if (fs::exists(f, fec) && !fs::is_regular_file(f, fec))
      throw CheckpointError(fmt::format("{}: not a regular file", f));
    std::ifstream bin(f, std::ios::binary);
    if (!bin) throw CheckpointError(fmt::format("{}: missing stage file", f));
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec || size != sizes[s])
      throw CheckpointError(fmt::format("{}: {} bytes, the manifest says {}: truncated or corrupt", f, size,
                                        sizes[s]));
    StageHeader h;
    bin.read(reinterpret_cast<char*>(&h), sizeof h);
    if (!bin || h.magic != kCheckpointMagic)
      throw CheckpointError(fmt::format("{}: bad magic: not a paci checkpoint stage file", f));
    if (h.version != kCheckpointVersion)
      throw CheckpointError(fmt::format("{}: version {} (this paci reads {})", f, h.version, kCheckpointVersion));
    if (h.stage != static_cast<int32_t>(s) || h.count < 0 || h.count > (int64_t{1} << 34))
      throw CheckpointError(fmt::format("{}: header names stage {} with {} parameters: corrupt", f, h.stage, h.count));
    const auto expect = static_cast<std::uintmax_t>(sizeof h + 3 * h.count * sizeof(float));
    if (size != expect)
      throw CheckpointError(fmt::format("{}: {} bytes, expected {} for {} parameters: truncated or "
                                        "corrupt", f, size, expect, h.count));
    uint64_t sum = fnv1a64(&h, sizeof h);
    const char* names[] = {"weights", "AdamW first moments (m)", "AdamW second moments (v)"};
    int which = 0;
    for (auto* vec : {&snap.params[s], &snap.m[s], &snap.v[s]}) {
      vec->resize(h.count);
      bin.read(reinterpret_cast<char*>(vec->data()), h.count * sizeof(float));
      if (!bin) throw CheckpointError(fmt::format("{}: read failed: truncated or corrupt", f));
      sum = fnv1a64(vec->data(), h.count * sizeof(float), sum);
      ++which;
    }
    if (sum != sums[s].second)
      throw CheckpointError(fmt::format("{}: checksum {} does not match the manifest's {}: the file is corrupt",
                                        f, hex64(sum), hex64(sums[s].second)));
    which = 0;
    for (auto* vec : {&snap.params[s], &snap.m[s], &snap.v[s]}) {
      for (size_t i = 0; i < vec->size(); ++i)
        if (!std::isfinite((*vec)[i]))
          throw CheckpointError(fmt::format("{}: {} hold a non-finite value ({} at index {}): refusing a "
                                            "diverged checkpoint", f, names[which], (*vec)[i], i));
      ++which;
    }
  }
  return dir;
}

}  // namespace paci
