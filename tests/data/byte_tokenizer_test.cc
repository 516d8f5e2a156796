// The byte tokenizer of prepare_sotu (`paci data prepare --tokenizer bytes`) on a small corpus:
// every document's UTF-8 bytes as tokens 0..255, each document preceded by byte 0, the same
// split by document as the GPT-2 shards, the llm.c layout, no encoder needed; and the unigram
// entropy the study compares against, on hand-computable token counts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "exec/data/prepare.h"
#include "exec/data/shard.h"
#include "schedules/files.h"
#include "tests/data/test_support.h"

namespace paci {
namespace {

using ::testing::HasSubstr;

std::string doc_text(int i) {
  // Non-ASCII on purpose: the shard holds UTF-8 bytes, not code points.
  return "Address " + std::to_string(i) + ": caf\xc3\xa9 \xe2\x82\xac" + std::to_string(i * 7) + ".\nEnd.";
}

class ByteTokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::make_temp_dir(std::string("bytes_") +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    for (int i = 0; i < 10; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "%04d_doc.txt", 1800 + i);
      testing::write_text_file(root_ + "/docs/" + name, doc_text(i) + "\n");
    }
    options_.tokenizer = Tokenizer::kBytes;
    options_.documents_dir = root_ + "/docs";  // no encoder_dir: bytes need none, and nothing is fetched
    options_.out_dir = root_ + "/out";
    options_.split = {5, 2};
    options_.progress = &log_;
  }
  std::string root_;
  std::ostringstream log_;
  PrepareOptions options_;
};

TEST_F(ByteTokenizerTest, ShardsHoldEachDocumentsBytesAfterANul) {
  const PrepareResult r = prepare_sotu(options_);
  std::vector<int> want_train, want_val;
  for (int i = 0; i < 10; ++i) {
    std::vector<int>& w = i % 5 == 2 ? want_val : want_train;
    w.push_back(0);
    for (unsigned char c : doc_text(i)) w.push_back(c);
  }
  const std::vector<uint16_t> train = read_token_shard(r.train_path, 256);
  const std::vector<uint16_t> val = read_token_shard(r.val_path, 256);
  EXPECT_EQ(std::vector<int>(train.begin(), train.end()), want_train);
  EXPECT_EQ(std::vector<int>(val.begin(), val.end()), want_val);
  EXPECT_EQ(r.train_documents, 8);
  EXPECT_EQ(r.val_documents, 2);
  const auto meta = nlohmann::json::parse(read_file(root_ + "/out/sotu_meta.json"));
  EXPECT_EQ(meta["source"]["tokenizer"], "bytes");
  EXPECT_EQ(meta["vocab"], 256);
  EXPECT_EQ(meta["eot"], 0);
  // A rerun reuses them.
  EXPECT_TRUE(prepare_sotu(options_).reused);
}

TEST_F(ByteTokenizerTest, DefaultFolderIsSotuBytes) {
  options_.out_dir.clear();
  options_.cache_dir = root_ + "/cache";
  const PrepareResult r = prepare_sotu(options_);
  EXPECT_EQ(r.train_path, root_ + "/cache/sotu-bytes/sotu_train.bin");
}

TEST_F(ByteTokenizerTest, ADocumentWithANulIsRefusedByName) {
  testing::write_text_file(root_ + "/docs/1900_nul.txt", std::string("a\0b", 3));
  try {
    prepare_sotu(options_);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("1900_nul.txt"));
    EXPECT_THAT(e.what(), HasSubstr("NUL"));
  }
}

TEST(TokenizerNames, ParseAndName) {
  Tokenizer t = Tokenizer::kGpt2;
  EXPECT_TRUE(parse_tokenizer("bytes", &t));
  EXPECT_EQ(t, Tokenizer::kBytes);
  EXPECT_STREQ(tokenizer_name(t), "bytes");
  EXPECT_TRUE(parse_tokenizer("gpt2", &t));
  EXPECT_EQ(t, Tokenizer::kGpt2);
  EXPECT_FALSE(parse_tokenizer("bpe", &t));
}

TEST(UnigramEntropy, HandComputedCounts) {
  // Two tokens, equally often: ln 2. Counts 3:1: -(3/4 ln 3/4 + 1/4 ln 1/4).
  EXPECT_NEAR(unigram_entropy({7, 9, 7, 9}), std::log(2.0), 1e-12);
  EXPECT_NEAR(unigram_entropy({1, 1, 1, 2}), -(0.75 * std::log(0.75) + 0.25 * std::log(0.25)), 1e-12);
  EXPECT_EQ(unigram_entropy({5, 5, 5}), 0.0);
  EXPECT_EQ(unigram_entropy({}), 0.0);
}

}  // namespace
}  // namespace paci
