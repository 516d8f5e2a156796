// llm.c fp32 checkpoints: round trip across different partitions, the file's tensor order,
// and the errors a user gets for a wrong or damaged file.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "exec/model/llmc_checkpoint.h"
#include "exec/model/partition.h"
#include "exec/model/param_layout.h"

namespace paci {
namespace {

GptConfig small_tied() {
  GptConfig cfg;
  cfg.vocab_size = 23;
  cfg.padded_vocab = 32;
  cfg.seq_len = 8;
  cfg.layers = 3;
  cfg.channels = 8;
  cfg.heads = 2;
  cfg.tied_embeddings = true;
  return cfg;
}

std::string tmp_path(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

// Per-stage host buffers with random (not init-like) values; tied copies equal.
struct StageBuffers {
  std::vector<StagePartition> parts;
  std::vector<ParamLayout> layouts;
  std::vector<std::vector<float>> data;

  StageBuffers(const GptConfig& cfg, const std::vector<int>& lps, bool random)
      : StageBuffers(partition_from_layers(cfg, lps), cfg, random) {}
  StageBuffers(const std::vector<StagePartition>& stages, const GptConfig& cfg, bool random) {
    parts = stages;
    for (const auto& p : parts) {
      layouts.push_back(make_param_layout(cfg, p));
      data.emplace_back(layouts.back().total, 0.0f);
      if (!random) continue;
      for (const TensorInfo& t : layouts.back().tensors) {
        NormalStream rng(3, t.tied_to_wte ? 0 : t.global_id);
        for (size_t i = 0; i < t.size; ++i) data.back()[t.offset + i] = rng.next();
      }
    }
  }
  std::vector<const float*> cptrs() const {
    std::vector<const float*> v;
    for (const auto& d : data) v.push_back(d.data());
    return v;
  }
  std::vector<float*> ptrs() {
    std::vector<float*> v;
    for (auto& d : data) v.push_back(d.data());
    return v;
  }
  std::map<std::string, std::vector<float>> by_name() const {
    std::map<std::string, std::vector<float>> m;
    for (size_t s = 0; s < parts.size(); ++s) {
      for (const TensorInfo& t : layouts[s].tensors) {
        m[t.name] =
            std::vector<float>(data[s].begin() + t.offset, data[s].begin() + t.offset + t.size);
      }
    }
    return m;
  }
};

std::vector<float> read_floats(const std::string& path, size_t offset, size_t n) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(1024 + offset * 4));
  std::vector<float> v(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * 4));
  return v;
}

std::string runtime_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(LlmcCheckpointTest, RoundTripAcrossPartitions) {
  const GptConfig cfg = small_tied();
  const std::string path = tmp_path("roundtrip.bin");
  const StageBuffers saved(cfg, {1, 2}, /*random=*/true);
  save_llmc_checkpoint(path, cfg, saved.parts, saved.cptrs());

  const GptConfig read = read_llmc_config(path);
  EXPECT_EQ(read.seq_len, 8);
  EXPECT_EQ(read.vocab_size, 23);
  EXPECT_EQ(read.padded_vocab, 32);
  EXPECT_EQ(read.layers, 3);
  EXPECT_EQ(read.heads, 2);
  EXPECT_EQ(read.channels, 8);
  EXPECT_TRUE(read.tied_embeddings);

  const auto want = saved.by_name();
  for (const std::vector<int>& lps : {std::vector<int>{3}, std::vector<int>{0, 2, 1}}) {
    StageBuffers loaded(cfg, lps, /*random=*/false);
    load_llmc_checkpoint(path, cfg, loaded.parts, loaded.ptrs());
    const auto got = loaded.by_name();
    ASSERT_EQ(got.size(), want.size());
    for (const auto& [name, v] : want) {
      EXPECT_EQ(std::memcmp(v.data(), got.at(name).data(), v.size() * 4), 0) << name;
    }
  }
}

// Stages that split a block between its halves read and write the same file, by name.
TEST(LlmcCheckpointTest, RoundTripAcrossHalfBlockPartitions) {
  const GptConfig cfg = small_tied();
  const std::string path = tmp_path("halves.bin");
  const StageBuffers saved(parse_layout(cfg, "E+0.5,1,1.5+H"), cfg, /*random=*/true);
  save_llmc_checkpoint(path, cfg, saved.parts, saved.cptrs());
  const std::string whole_path = tmp_path("halves_whole.bin");
  const StageBuffers whole(cfg, {3}, /*random=*/true);
  save_llmc_checkpoint(whole_path, cfg, whole.parts, whole.cptrs());
  std::ifstream a(path, std::ios::binary), b(whole_path, std::ios::binary);
  const std::string fa((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
  const std::string fb((std::istreambuf_iterator<char>(b)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(fa == fb) << "the same values in a split partition write the same llm.c file";
  const auto want = saved.by_name();
  for (const char* layout : {"3", "1.5,1.5", "E,0.5,0.5,0.5,0.5,0.5,0.5,H"}) {
    StageBuffers loaded(parse_layout(cfg, layout), cfg, /*random=*/false);
    load_llmc_checkpoint(path, cfg, loaded.parts, loaded.ptrs());
    const auto got = loaded.by_name();
    ASSERT_EQ(got.size(), want.size()) << layout;
    for (const auto& [name, v] : want) {
      EXPECT_EQ(std::memcmp(v.data(), got.at(name).data(), v.size() * 4), 0) << layout << ": " << name;
    }
  }
}

TEST(LlmcCheckpointTest, FileFollowsLlmcLayout) {
  const GptConfig cfg = small_tied();
  const std::string path = tmp_path("layout.bin");
  const StageBuffers saved(cfg, {3}, true);
  save_llmc_checkpoint(path, cfg, saved.parts, saved.cptrs());
  std::ifstream in(path, std::ios::binary);
  int32_t header[256];
  in.read(reinterpret_cast<char*>(header), sizeof(header));
  EXPECT_EQ(header[0], 20240326);
  EXPECT_EQ(header[1], 3);
  EXPECT_EQ(header[2], 8);   // maxT
  EXPECT_EQ(header[3], 23);  // V
  EXPECT_EQ(header[4], 3);   // L
  EXPECT_EQ(header[5], 2);   // NH
  EXPECT_EQ(header[6], 8);   // C
  EXPECT_EQ(header[7], 32);  // Vp
  const auto w = saved.by_name();
  const size_t C = 8, L = 3, Vp = 32, V = 23, T = 8;
  EXPECT_EQ(read_floats(path, 0, V * C), w.at("wte"));
  EXPECT_EQ(read_floats(path, V * C, (Vp - V) * C), std::vector<float>((Vp - V) * C, 0.0f));
  EXPECT_EQ(read_floats(path, Vp * C, T * C), w.at("wpe"));
  // ln1w of all layers, then ln1b of all layers, then qkvw of all layers...
  const size_t ln1w = Vp * C + T * C;
  EXPECT_EQ(read_floats(path, ln1w + 2 * C, C), w.at("h.2.ln1w"));
  const size_t qkvw = ln1w + 2 * L * C;
  EXPECT_EQ(read_floats(path, qkvw + 1 * 3 * C * C, 3 * C * C), w.at("h.1.qkvw"));
  // lnfw, lnfb close the file.
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  const size_t floats = (static_cast<size_t>(f.tellg()) - 1024) / 4;
  EXPECT_EQ(read_floats(path, floats - 2 * C, C), w.at("lnfw"));
  EXPECT_EQ(read_floats(path, floats - C, C), w.at("lnfb"));
}

TEST(LlmcCheckpointTest, RefusesUntiedModel) {
  GptConfig cfg = small_tied();
  cfg.tied_embeddings = false;
  const StageBuffers b(cfg, {3}, true);
  try {
    save_llmc_checkpoint(tmp_path("untied.bin"), cfg, b.parts, b.cptrs());
    FAIL() << "untied model saved";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("untied"), std::string::npos) << e.what();
  }
}

TEST(LlmcCheckpointTest, RefusesDivergedTiedCopies) {
  const GptConfig cfg = small_tied();
  StageBuffers b(cfg, {1, 2}, true);
  b.data[1][b.layouts[1].find("lm_head")->offset] += 1.0f;
  EXPECT_THROW(save_llmc_checkpoint(tmp_path("diverged.bin"), cfg, b.parts, b.cptrs()),
               std::logic_error);
}

// Writes a valid file, then damages it with `damage(bytes)`.
std::string damaged(const std::string& name, const std::function<void(std::string&)>& damage) {
  const GptConfig cfg = small_tied();
  const std::string path = tmp_path(name);
  const StageBuffers b(cfg, {3}, true);
  save_llmc_checkpoint(path, cfg, b.parts, b.cptrs());
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  damage(bytes);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
  return path;
}

void set_header(std::string& bytes, int index, int32_t value) {
  std::memcpy(&bytes[index * 4], &value, 4);
}

TEST(LlmcCheckpointTest, CorruptHeaders) {
  auto expect_error = [](const std::string& path, const std::string& needle) {
    const std::string msg = runtime_error_of([&] { read_llmc_config(path); });
    EXPECT_NE(msg.find(needle), std::string::npos) << "message: '" << msg << "'";
    EXPECT_NE(msg.find(path), std::string::npos) << "message names the file: " << msg;
  };
  expect_error(damaged("magic.bin", [](std::string& b) { set_header(b, 0, 20240520); }),
               "magic 20240520");
  expect_error(damaged("version.bin", [](std::string& b) { set_header(b, 1, 5); }), "version 5");
  expect_error(damaged("short.bin", [](std::string& b) { b.resize(b.size() - 4); }), "truncated");
  expect_error(damaged("header.bin", [](std::string& b) { b.resize(100); }), "header");
  expect_error(damaged("heads.bin", [](std::string& b) { set_header(b, 5, 3); }),
               "divisible by heads");
  EXPECT_NE(runtime_error_of([] {
              read_llmc_config(tmp_path("does-not-exist.bin"));
            }).find("cannot open"),
            std::string::npos);
}

TEST(LlmcCheckpointTest, ShapeMismatchOnLoad) {
  const GptConfig cfg = small_tied();
  const std::string path = tmp_path("shape.bin");
  const StageBuffers b(cfg, {3}, true);
  save_llmc_checkpoint(path, cfg, b.parts, b.cptrs());
  GptConfig other = cfg;
  other.layers = 2;
  StageBuffers into(other, {2}, false);
  const std::string msg =
      runtime_error_of([&] { load_llmc_checkpoint(path, other, into.parts, into.ptrs()); });
  EXPECT_NE(msg.find("L3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("L2"), std::string::npos) << msg;
}

}  // namespace
}  // namespace paci
