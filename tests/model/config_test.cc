// Model presets and validation, stage partitioning, the parameter table and the
// partition-independent initialisation.
#include "exec/model/config.h"

#include <gtest/gtest.h>

#include "tests/model/error_of.h"

#include <cmath>
#include <cstring>
#include <map>

#include "exec/model/param_layout.h"
#include "exec/model/partition.h"

namespace paci {
namespace {

using paci::testing::error_of;

TEST(ConfigTest, Presets) {
  const GptConfig tiny = preset("tiny");
  EXPECT_EQ(tiny.vocab_size, 50257);
  EXPECT_EQ(tiny.layers, 2);
  const GptConfig small = preset("gpt2-124m");
  EXPECT_EQ(small.layers, 12);
  EXPECT_EQ(small.channels, 768);
  EXPECT_TRUE(small.tied_embeddings);
  // GPT-2 small's published parameter count (Hugging Face, tied, V = 50257).
  EXPECT_EQ(num_parameters(small), 124439808);
  const GptConfig medium = preset("gpt2-350m");
  EXPECT_FALSE(medium.tied_embeddings);
  // GPT-2 medium has 354,823,168 tied; the untied head adds V·C = 51,463,168: the paper's
  // "~406M".
  EXPECT_EQ(num_parameters(medium), 354823168 + 50257 * 1024);
  EXPECT_DOUBLE_EQ(flops_per_token(small), 6.0 * 124439808 + 6.0 * 12 * 768 * 1024);
  EXPECT_DOUBLE_EQ(flops_per_token(small, 256), 6.0 * 124439808 + 6.0 * 12 * 768 * 256);
}

TEST(ConfigTest, ParseModelPresetsAliasesAndCustom) {
  EXPECT_EQ(parse_model("gpt2").layers, 12);
  EXPECT_TRUE(parse_model("gpt2").tied_embeddings);
  EXPECT_EQ(parse_model("gpt2-medium").channels, 1024);
  EXPECT_FALSE(parse_model("gpt2-medium").tied_embeddings);
  EXPECT_EQ(parse_model("gpt2-large").layers, 36);
  EXPECT_EQ(parse_model("gpt2-xl").heads, 25);
  EXPECT_EQ(parse_model("gpt2-xl").name, "gpt2-1558m");
  // GPT-2 XL: 1,557,611,200 parameters (tied).
  EXPECT_EQ(num_parameters(parse_model("gpt2-1558m")), 1557611200);
  const GptConfig c = parse_model("custom:layers=3,d=48,heads=3,seq=32,vocab=97,tied=1");
  EXPECT_EQ(c.layers, 3);
  EXPECT_EQ(c.channels, 48);
  EXPECT_EQ(c.heads, 3);
  EXPECT_EQ(c.seq_len, 32);
  EXPECT_EQ(c.vocab_size, 97);
  EXPECT_EQ(c.padded_vocab, 128);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(parse_model("custom:layers=1,d=8,heads=2,seq=4,vocab=10").tied_embeddings);
  EXPECT_NE(error_of([] { parse_model("custom:layers=1,d=8,heads=2,seq=4"); }).find("needs vocab=N"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_model("custom:layers=1,d=9,heads=2,seq=4,vocab=3"); })
                .find("d=9 must be a multiple of heads=2"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_model("custom:layers=x,d=8,heads=2,seq=4,vocab=3"); }).find("not a whole number"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_model("custom:layers=1,d=8,heads=2,seq=4,vocab=3,tied=2"); })
                .find("tied must be 0 or 1"),
            std::string::npos);
  const std::string msg = error_of([] { parse_model("gpt3"); });
  for (const char* n : {"gpt2-medium", "gpt2-xl", "custom:layers=L"}) EXPECT_NE(msg.find(n), std::string::npos) << msg;
}

TEST(ConfigTest, UnknownPresetNamesTheAllowedOnes) {
  const std::string msg = error_of([] { preset("gpt5"); });
  EXPECT_NE(msg.find("gpt5"), std::string::npos) << msg;
  for (const std::string& n : preset_names()) EXPECT_NE(msg.find(n), std::string::npos) << msg;
}

TEST(ConfigTest, ValidationNamesTheField) {
  GptConfig cfg = preset("tiny");
  cfg.heads = 5;
  EXPECT_NE(error_of([&] { validate(cfg); }).find("divisible by heads"), std::string::npos);
  cfg = preset("tiny");
  cfg.padded_vocab = 100;
  EXPECT_NE(error_of([&] { validate(cfg); }).find("padded_vocab"), std::string::npos);
  cfg = preset("tiny");
  cfg.channels = 0;
  EXPECT_NE(error_of([&] { validate(cfg); }).find("channels"), std::string::npos);
}

TEST(PartitionTest, FromLayers) {
  const GptConfig cfg = preset("gpt2-124m");
  const auto parts = partition_from_layers(cfg, {5, 4, 3});
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], (StagePartition{0, 4, true, false}));
  EXPECT_EQ(parts[1], (StagePartition{5, 8, false, false}));
  EXPECT_EQ(parts[2], (StagePartition{9, 11, false, true}));
  EXPECT_EQ(partition_from_layers(cfg, {12})[0], (StagePartition{0, 11, true, true}));
  // Head-only last stage, embedding-only first stage.
  EXPECT_EQ(partition_from_layers(cfg, {12, 0})[1].num_layers(), 0);
  EXPECT_EQ(partition_from_layers(cfg, {0, 12})[0].num_layers(), 0);
}

TEST(PartitionTest, FromLayersErrors) {
  const GptConfig cfg = preset("gpt2-124m");
  EXPECT_NE(error_of([&] {
              partition_from_layers(cfg, {5, 5});
            }).find("sum to 10"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              partition_from_layers(cfg, {13, -1});
            }).find(">= 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              partition_from_layers(cfg, {6, 0, 6});
            }).find("stage 1"),
            std::string::npos);
  EXPECT_FALSE(error_of([&] { partition_from_layers(cfg, {}); }).empty());
}

TEST(PartitionTest, BalancedCoversTheModel) {
  for (const std::string& name : preset_names()) {
    const GptConfig cfg = preset(name);
    for (int stages = 1; stages <= std::min(num_units(cfg), 9); ++stages) {
      const auto parts = balanced_partition(cfg, stages);
      ASSERT_EQ(static_cast<int>(parts.size()), stages);
      EXPECT_NO_THROW(check_partition(cfg, parts)) << name << " P=" << stages;
      int next = 0;
      for (int s = 0; s < stages; ++s) {
        EXPECT_EQ(parts[s].first_unit(), next) << name << " P=" << stages;
        EXPECT_EQ(parts[s].has_embedding, s == 0);
        EXPECT_EQ(parts[s].has_head, s == stages - 1);
        EXPECT_GE(parts[s].num_units(), 1) << name << " P=" << stages;
        next = parts[s].last_unit() + 1;
      }
      EXPECT_EQ(next, num_units(cfg));
    }
  }
}

TEST(PartitionTest, BalancedAccountsForTheHead) {
  // Tiny model: the LM head (2·C·V FLOPs/token) outweighs both layers, so two stages put
  // both layers with the embedding and the head alone on the last stage.
  const GptConfig tiny = preset("tiny");
  EXPECT_GT(head_cost_in_layers(tiny), 10.0);
  const auto two = balanced_partition(tiny, 2);
  EXPECT_EQ(two[0].num_layers(), 2);
  EXPECT_EQ(two[1].num_layers(), 0);

  // GPT-2 medium on 8 stages (the paper's setup): head ≈ 3.5 layers, so the last stage gets
  // fewer layers than the others and no stage costs more than the even split rounded up.
  const GptConfig med = preset("gpt2-350m");
  const double head = head_cost_in_layers(med);
  EXPECT_GT(head, 2.0);
  EXPECT_LT(head, 5.0);
  const auto eight = balanced_partition(med, 8);
  double max_cost = 0;
  for (const auto& p : eight) max_cost = std::max(max_cost, stage_cost_in_layers(med, p));
  EXPECT_LE(max_cost, std::ceil((med.layers + head) / 8.0) + 1.0);
  EXPECT_LT(eight.back().num_layers(), eight.front().num_layers());
  // With a negligible head (tiny vocabulary) 12 layers split evenly over 3 stages.
  GptConfig flat = preset("gpt2-124m");
  flat.vocab_size = flat.padded_vocab = 64;  // head ~ free
  const auto three = balanced_partition(flat, 3);
  for (const auto& p : three) EXPECT_EQ(p.num_layers(), 4);
}

TEST(PartitionTest, TooManyStages) {
  const GptConfig tiny = preset("tiny");
  EXPECT_NO_THROW(balanced_partition(tiny, 6));  // 2L + 2 units, one per stage
  EXPECT_NE(error_of([&] { balanced_partition(tiny, 7); }).find("at most"), std::string::npos);
  EXPECT_FALSE(error_of([&] { balanced_partition(tiny, 0); }).empty());
}

TEST(LayoutTest, TensorTable) {
  const GptConfig cfg = preset("tiny");
  const auto parts = partition_from_layers(cfg, {1, 1});
  const ParamLayout first = make_param_layout(cfg, parts[0]);
  const ParamLayout last = make_param_layout(cfg, parts[1]);
  ASSERT_EQ(first.tensors.size(), 2u + 12u);
  ASSERT_EQ(last.tensors.size(), 12u + 3u);
  EXPECT_EQ(first.tensors[0].name, "wte");
  EXPECT_EQ(first.tensors[0].size, 50257u * 64u);
  EXPECT_TRUE(first.tensors[0].is_2d);
  EXPECT_EQ(first.tensors[2].name, "h.0.ln1w");
  EXPECT_FALSE(first.tensors[2].is_2d);
  EXPECT_EQ(last.tensors[0].name, "h.1.ln1w");
  EXPECT_EQ(last.tensors.back().name, "lm_head");
  EXPECT_FALSE(last.tensors.back().tied_to_wte);
  size_t sum = 0;
  for (const auto* l : {&first, &last}) {
    for (size_t i = 0; i < l->tensors.size(); ++i) {
      const TensorInfo& t = l->tensors[i];
      EXPECT_EQ(t.offset % kParamAlignment, 0u) << t.name;
      if (i > 0) {
        EXPECT_GE(t.offset, l->tensors[i - 1].offset + l->tensors[i - 1].size);
      }
      EXPECT_LE(t.offset + t.size, l->total);
      sum += t.size;
    }
  }
  EXPECT_EQ(sum, static_cast<size_t>(num_parameters(cfg)));
  GptConfig tied = cfg;
  tied.tied_embeddings = true;
  EXPECT_TRUE(make_param_layout(tied, parts[1]).find("lm_head")->tied_to_wte);
}

std::map<std::string, std::vector<float>> init_by_name(const GptConfig& cfg,
                                                       const std::vector<int>& lps, uint64_t seed) {
  std::map<std::string, std::vector<float>> out;
  for (const StagePartition& p : partition_from_layers(cfg, lps)) {
    const ParamLayout layout = make_param_layout(cfg, p);
    std::vector<float> buf(layout.total);
    init_parameters(cfg, layout, seed, buf.data());
    for (const TensorInfo& t : layout.tensors) {
      out[t.name] = std::vector<float>(buf.begin() + t.offset, buf.begin() + t.offset + t.size);
    }
  }
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(InitTest, SameWeightsWhateverThePartition) {
  GptConfig cfg = preset("tiny");
  cfg.layers = 4;
  const auto one = init_by_name(cfg, {4}, 42);
  const auto three = init_by_name(cfg, {1, 2, 1}, 42);
  const auto four = init_by_name(cfg, {0, 2, 2, 0}, 42);
  ASSERT_EQ(one.size(), three.size());
  for (const auto& [name, v] : one) {
    EXPECT_TRUE(same_bits(v, three.at(name))) << name;
    EXPECT_TRUE(same_bits(v, four.at(name))) << name;
  }
  // Same seed again: identical; another seed: different random tensors, same constants.
  const auto again = init_by_name(cfg, {4}, 42);
  const auto other = init_by_name(cfg, {4}, 43);
  for (const auto& [name, v] : one) {
    EXPECT_TRUE(same_bits(v, again.at(name))) << name;
    const bool random = name.find("ln") == std::string::npos && name.back() != 'b';
    EXPECT_EQ(same_bits(v, other.at(name)), !random) << name;
  }
  // Distinct tensors get distinct streams.
  EXPECT_FALSE(std::equal(one.at("h.0.fcw").begin(), one.at("h.0.fcw").begin() + 64,
                          one.at("h.1.fcw").begin()));
}

TEST(InitTest, Gpt2Statistics) {
  GptConfig cfg = preset("tiny");
  cfg.tied_embeddings = true;
  const auto w = init_by_name(cfg, {1, 1}, 7);
  auto stddev = [](const std::vector<float>& v) {
    double s = 0, s2 = 0;
    for (float x : v) {
      s += x;
      s2 += static_cast<double>(x) * x;
    }
    const double m = s / v.size();
    return std::sqrt(s2 / v.size() - m * m);
  };
  // 3.2M samples: the sample std is within ~0.1% of 0.02; 2% is a loose bound.
  EXPECT_NEAR(stddev(w.at("wte")), 0.02, 0.02 * 0.02);
  // 16k samples (C×4C): ~0.6% sampling error; 5% bound.
  EXPECT_NEAR(stddev(w.at("h.0.fcw")), 0.02, 0.02 * 0.05);
  EXPECT_NEAR(stddev(w.at("h.1.fcprojw")), 0.02 / std::sqrt(4.0), 0.01 * 0.05);
  EXPECT_NEAR(stddev(w.at("h.0.attprojw")), 0.02 / std::sqrt(4.0), 0.01 * 0.08);
  for (float x : w.at("h.0.ln1w")) ASSERT_EQ(x, 1.0f);
  for (float x : w.at("lnfb")) ASSERT_EQ(x, 0.0f);
  for (float x : w.at("h.1.qkvb")) ASSERT_EQ(x, 0.0f);
  EXPECT_TRUE(same_bits(w.at("wte"), w.at("lm_head")));  // tied copy starts identical
}

}  // namespace
}  // namespace paci
