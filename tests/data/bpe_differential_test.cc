// Differential test: the C++ encoder against the npm package's JS encoder, run under node, on
// every validation document of the SOTU corpus (set PACI_DIFF_ALL=1 to compare all 233; the JS
// encoder needs about a minute for that) and on 3,000 random strings of tricky pieces. Also checks
// that the prepared validation shard is exactly EOT + JS ids per document. Needs $PACI_DATA_DIR
// (fetched and prepared) and node.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "exec/data/bpe.h"
#include "exec/data/fetch.h"
#include "schedules/files.h"
#include "exec/data/prepare.h"
#include "exec/data/shard.h"
#include "tests/data/test_support.h"

namespace paci {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Random strings over pieces that stress the pre-tokenizer: contractions, every kind of space
// JavaScript's \s knows (and look-alikes it does not: NEL, U+180E, U+200B), letters and numbers
// from several scripts, combining marks, emoji with modifiers, punctuation runs.
std::vector<std::string> random_tricky_strings(int count) {
  static const char* const kPieces[] = {"a",
                                        "Z",
                                        "the",
                                        " of",
                                        "'s",
                                        "'t",
                                        "'re",
                                        "'ve",
                                        "'m",
                                        "'ll",
                                        "'d",
                                        "'S",
                                        "'",
                                        "\"",
                                        "0",
                                        "42",
                                        " 1790",
                                        "3.5",
                                        ",",
                                        ".",
                                        "!!",
                                        "?",
                                        "--",
                                        "$",
                                        "(",
                                        ")",
                                        " ",
                                        "  ",
                                        "\n",
                                        "\n\n",
                                        "\t",
                                        "\r\n",
                                        "\xC2\xA0",
                                        "\xE2\x80\x89",
                                        "\xE3\x80\x80",
                                        "\xEF\xBB\xBF",
                                        "\xE2\x80\xA8",
                                        "\xC2\x85",
                                        "\xE1\xA0\x8E",
                                        "\xE2\x80\x8B",
                                        "\xC3\xA9",
                                        "\xC3\x9F",
                                        "\xD0\x96",
                                        "\xE6\x97\xA5",
                                        "\xD9\xA3",
                                        "\xC2\xB2",
                                        "\xE2\x85\xAB",
                                        "e\xCC\x81",
                                        "\xF0\x9F\x98\x80",
                                        "\xF0\x9F\x8F\xBD",
                                        "\xE2\x80\x94",
                                        "\xE2\x80\x99"};
  constexpr int kNumPieces = sizeof(kPieces) / sizeof(kPieces[0]);
  std::mt19937 rng(20240520);
  std::uniform_int_distribution<int> length(0, 24), piece(0, kNumPieces - 1);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string s;
    for (int n = length(rng); n > 0; --n) s += kPieces[piece(rng)];
    out.push_back(s);
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Ids around the first difference, for a failure message that shows both sides.
std::string describe_mismatch(const BpeEncoder& enc, const std::vector<int>& cpp,
                              const std::vector<int>& js) {
  size_t i = 0;
  while (i < cpp.size() && i < js.size() && cpp[i] == js[i]) ++i;
  auto window = [&](const std::vector<int>& ids) {
    const size_t lo = i >= 5 ? i - 5 : 0, hi = std::min(ids.size(), i + 5);
    std::ostringstream s;
    for (size_t k = lo; k < hi; ++k) s << (k == i ? " [" : " ") << ids[k] << (k == i ? "]" : "");
    s << "  text: \"" << enc.decode(std::vector<int>(ids.begin() + lo, ids.begin() + hi)) << "\"";
    return s.str();
  };
  std::ostringstream out;
  out << "first difference at token " << i << " (C++ " << cpp.size() << " tokens, JS " << js.size()
      << ")\n  C++:" << window(cpp) << "\n  JS: " << window(js);
  return out.str();
}

class BpeDifferentialTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    data_dir_ = testing::data_dir_or_error(&error_);
    if (data_dir_.empty()) return;
    const DataPaths paths = data_paths(data_dir_);
    encoder_ = std::make_unique<BpeEncoder>(BpeEncoder::load_dir(paths.encoder_dir));
    const bool all = std::getenv("PACI_DIFF_ALL") != nullptr;
    const std::vector<Document> docs = load_documents(paths.sotu_dir);
    for (size_t i = 0; i < docs.size(); ++i) {
      if (all || is_validation_document(i, SplitRule{})) docs_.push_back(docs[i]);
    }

    const auto cpp_start = std::chrono::steady_clock::now();
    for (const Document& d : docs_) cpp_ids_.push_back(encoder_->encode(d.text));
    cpp_seconds_ = seconds_since(cpp_start);
    random_ = random_tricky_strings(3000);

    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string dir = tmp != nullptr ? tmp : "/tmp";
    nlohmann::json texts = nlohmann::json::array();
    for (const Document& d : docs_) texts.push_back(d.text);
    for (const std::string& r : random_) texts.push_back(r);
    write_file_atomic(dir + "/texts.json", texts.dump());
    const char* srcdir = std::getenv("TEST_SRCDIR");
    const std::string script = srcdir != nullptr
                                   ? std::string(srcdir) + "/paci/tests/data/js_encode.js"
                                   : std::string("tests/data/js_encode.js");
    const char* node_env = std::getenv("NODE");
    const std::string node = node_env != nullptr ? node_env : "node";
    const std::string command =
        shell_quote(node) + " " + shell_quote(script) + " " + shell_quote(paths.encoder_dir) + " " +
        shell_quote(dir + "/texts.json") + " " + shell_quote(dir + "/ids.json");
    const auto js_start = std::chrono::steady_clock::now();
    const int status = std::system(command.c_str());
    js_seconds_ = seconds_since(js_start);
    if (status != 0) {
      error_ = "node failed (status " + std::to_string(status) + "): " + command +
               "; is node (v12+) on PATH? set $NODE to its path otherwise";
      return;
    }
    const auto ids = nlohmann::json::parse(read_file(dir + "/ids.json"));
    for (const auto& doc_ids : ids) js_ids_.push_back(doc_ids.get<std::vector<int>>());
    if (js_ids_.size() != docs_.size() + random_.size()) {
      error_ = "node returned " + std::to_string(js_ids_.size()) + " id lists for " +
               std::to_string(docs_.size() + random_.size()) + " texts";
      return;
    }
    js_random_ids_.assign(js_ids_.begin() + docs_.size(), js_ids_.end());
    js_ids_.resize(docs_.size());
  }
  static void TearDownTestSuite() { encoder_.reset(); }

  void SetUp() override {
    ASSERT_NE(encoder_, nullptr) << error_;
    ASSERT_EQ(js_ids_.size(), docs_.size()) << error_;
    ASSERT_EQ(js_random_ids_.size(), random_.size()) << error_;
  }

  static std::string data_dir_;
  static std::string error_;
  static std::unique_ptr<BpeEncoder> encoder_;
  static std::vector<Document> docs_;
  static std::vector<std::vector<int>> cpp_ids_;
  static std::vector<std::vector<int>> js_ids_;
  static std::vector<std::string> random_;
  static std::vector<std::vector<int>> js_random_ids_;
  static double cpp_seconds_;
  static double js_seconds_;
};
std::string BpeDifferentialTest::data_dir_;
std::string BpeDifferentialTest::error_;
std::unique_ptr<BpeEncoder> BpeDifferentialTest::encoder_;
std::vector<Document> BpeDifferentialTest::docs_;
std::vector<std::vector<int>> BpeDifferentialTest::cpp_ids_;
std::vector<std::vector<int>> BpeDifferentialTest::js_ids_;
std::vector<std::string> BpeDifferentialTest::random_;
std::vector<std::vector<int>> BpeDifferentialTest::js_random_ids_;
double BpeDifferentialTest::cpp_seconds_ = 0;
double BpeDifferentialTest::js_seconds_ = 0;

TEST_F(BpeDifferentialTest, MatchesJsEncoderOnValidationDocuments) {
  size_t tokens = 0;
  for (size_t i = 0; i < docs_.size(); ++i) {
    tokens += cpp_ids_[i].size();
    EXPECT_TRUE(cpp_ids_[i] == js_ids_[i])
        << docs_[i].name << ": " << describe_mismatch(*encoder_, cpp_ids_[i], js_ids_[i]);
  }
  EXPECT_GE(docs_.size(), 19u);
  std::cout << "compared " << docs_.size() << " documents, " << tokens << " tokens; C++ "
            << cpp_seconds_ << " s, JS " << js_seconds_ << " s" << std::endl;
}

TEST_F(BpeDifferentialTest, MatchesJsEncoderOnRandomTrickyStrings) {
  int failures = 0;
  for (size_t i = 0; i < random_.size() && failures < 10; ++i) {
    const std::vector<int> cpp = encoder_->encode(random_[i]);
    if (cpp != js_random_ids_[i]) {
      ++failures;
      ADD_FAILURE() << "string " << i << " \"" << random_[i]
                    << "\": " << describe_mismatch(*encoder_, cpp, js_random_ids_[i]);
    }
    EXPECT_EQ(encoder_->decode(cpp), random_[i]);
  }
}

TEST_F(BpeDifferentialTest, ValidationShardIsEndOfTextJoinedJsIds) {
  if (std::getenv("PACI_DIFF_ALL") != nullptr) GTEST_SKIP() << "compares validation only";
  const std::string shard = data_dir_ + "/sotu/sotu_val.bin";
  std::vector<uint16_t> tokens;
  ASSERT_NO_THROW(tokens = read_token_shard(shard))
      << shard << " is missing or invalid; run paci data prepare --cache " << data_dir_;
  std::vector<uint16_t> expected;
  for (const auto& ids : js_ids_) {
    expected.push_back(kGpt2EndOfText);
    expected.insert(expected.end(), ids.begin(), ids.end());
  }
  ASSERT_EQ(tokens.size(), expected.size());
  EXPECT_TRUE(tokens == expected);
}

}  // namespace
}  // namespace paci
