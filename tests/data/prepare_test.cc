// prepare_sotu on a small synthetic corpus with a byte-level vocabulary; no download.
#include "exec/data/prepare.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "exec/data/bpe.h"
#include "schedules/files.h"
#include "exec/data/shard.h"
#include "tests/data/test_support.h"

namespace paci {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int kDocs = 25;

std::string doc_text(int i) {
  // Distinct words per document, so any leak of a validation document into train is visible.
  return "Address number " + std::to_string(i) + " speaks of topic" + std::to_string(i * 7) +
         ".\nSecond line, document " + std::to_string(i) + ".";
}

class PrepareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::make_temp_dir(std::string("prepare_") +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    testing::write_tiny_vocab(root_ + "/vocab", {{"e", " "}, {"t", "h"}});
    for (int i = 0; i < kDocs; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "%04d_doc.txt", 1800 + i);
      // The files end with a newline, like the real corpus; prepare drops it.
      testing::write_text_file(root_ + "/docs/" + name, doc_text(i) + "\n");
    }
    options_.encoder_dir = root_ + "/vocab";
    options_.documents_dir = root_ + "/docs";
    options_.out_dir = root_ + "/out";
    options_.split = {5, 2};
    options_.progress = &log_;
  }

  // Splits a shard into documents at each EOT and decodes them.
  std::vector<std::string> documents_in(const std::string& shard) {
    const BpeEncoder enc = BpeEncoder::load_dir(root_ + "/vocab");
    const std::vector<uint16_t> tokens = read_token_shard(shard);
    std::vector<std::string> docs;
    std::vector<int> current;
    EXPECT_FALSE(tokens.empty());
    EXPECT_EQ(tokens.front(), enc.end_of_text()) << "a shard starts with EOT";
    for (size_t i = 1; i <= tokens.size(); ++i) {
      if (i == tokens.size() || tokens[i] == enc.end_of_text()) {
        docs.push_back(enc.decode(current));
        current.clear();
      } else {
        current.push_back(tokens[i]);
      }
    }
    return docs;
  }

  std::string root_;
  std::ostringstream log_;
  PrepareOptions options_;
};

TEST_F(PrepareTest, HoldsOutValidationByDocument) {
  const PrepareResult r = prepare_sotu(options_);
  EXPECT_FALSE(r.reused);
  EXPECT_EQ(r.train_documents, 20);
  EXPECT_EQ(r.val_documents, 5);
  EXPECT_EQ(r.train_path, root_ + "/out/sotu_train.bin");
  EXPECT_EQ(r.val_path, root_ + "/out/sotu_val.bin");
  EXPECT_EQ(read_token_shard_header(r.train_path), r.train_tokens);
  EXPECT_EQ(read_token_shard_header(r.val_path), r.val_tokens);

  std::vector<std::string> want_train, want_val;
  for (int i = 0; i < kDocs; ++i) (i % 5 == 2 ? want_val : want_train).push_back(doc_text(i));
  const std::vector<std::string> train = documents_in(r.train_path);
  const std::vector<std::string> val = documents_in(r.val_path);
  EXPECT_EQ(val, want_val);
  EXPECT_EQ(train, want_train);
  for (const std::string& v : val) {
    for (const std::string& t : train) EXPECT_NE(t, v) << "validation document in train";
  }
  const auto meta = nlohmann::json::parse(read_file(root_ + "/out/sotu_meta.json"));
  EXPECT_EQ(meta["val"]["names"].size(), 5u);
  EXPECT_EQ(meta["val"]["names"][0], "1802_doc.txt");
  EXPECT_THAT(log_.str(), HasSubstr("prepare: encoding 25 documents"));
}

TEST_F(PrepareTest, RerunReusesShards) {
  const PrepareResult first = prepare_sotu(options_);
  const auto written = fs::last_write_time(first.train_path);
  const PrepareResult second = prepare_sotu(options_);
  EXPECT_TRUE(second.reused);
  EXPECT_EQ(second.train_tokens, first.train_tokens);
  EXPECT_EQ(second.val_tokens, first.val_tokens);
  EXPECT_EQ(second.val_documents, first.val_documents);
  EXPECT_EQ(fs::last_write_time(first.train_path), written) << "reuse must not rewrite";
  EXPECT_THAT(log_.str(), HasSubstr("prepare: reusing"));
}

TEST_F(PrepareTest, RebuildsWhenInputsOrRuleChange) {
  prepare_sotu(options_);
  // A newer document: stale shards.
  const fs::path doc = root_ + "/docs/1800_doc.txt";
  fs::last_write_time(doc, fs::file_time_type::clock::now() + std::chrono::seconds(5));
  EXPECT_FALSE(prepare_sotu(options_).reused);

  PrepareOptions other = options_;
  other.split = {5, 3};
  EXPECT_FALSE(prepare_sotu(other).reused);

  other.force = true;
  EXPECT_FALSE(prepare_sotu(other).reused);
}

TEST_F(PrepareTest, RebuildsWhenAShardIsDamaged) {
  const PrepareResult first = prepare_sotu(options_);
  fs::resize_file(first.val_path, 1024 + 2);
  const PrepareResult again = prepare_sotu(options_);
  EXPECT_FALSE(again.reused);
  EXPECT_EQ(read_token_shard_header(again.val_path), first.val_tokens);
}

TEST_F(PrepareTest, RejectsRuleWithoutValidationDocuments) {
  options_.split = {100, 50};
  try {
    prepare_sotu(options_);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("leaves 25 training and 0 validation documents"));
  }
  EXPECT_FALSE(fs::exists(root_ + "/out/sotu_train.bin"));
  options_.split = {5, 5};
  EXPECT_THROW(prepare_sotu(options_), std::runtime_error);
}

TEST(SplitRuleTest, DefaultHoldsOutEveryTwelfthFromTheSeventh) {
  const SplitRule rule;
  int held = 0;
  for (size_t i = 0; i < 233; ++i) held += is_validation_document(i, rule);
  EXPECT_EQ(held, 19);
  EXPECT_TRUE(is_validation_document(6, rule));
  EXPECT_TRUE(is_validation_document(18, rule));
  EXPECT_FALSE(is_validation_document(0, rule));
}

TEST(LoadDocumentsTest, MissingDirectorySuggestsPrepare) {
  try {
    load_documents("/nonexistent/paci/docs");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/paci/docs"));
    EXPECT_THAT(e.what(), HasSubstr("paci data prepare"));
  }
}

TEST(RunDataPrepareTest, FailurePrintsOneLineAndReturnsTwo) {
  // A cache "directory" that is a file cannot be created: fails before any download.
  const std::string file = testing::make_temp_dir("run_prepare") + "/not_a_dir";
  testing::write_text_file(file, "x");
  std::ostringstream out;
  EXPECT_EQ(run_data_prepare(file, out), 2);
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("paci data prepare: fetch: cannot create cache directory"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
}

}  // namespace
}  // namespace paci
