// BPE mechanics on tiny hand-made vocabularies; needs no downloaded data.
#include "exec/data/bpe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "tests/data/test_support.h"

namespace paci {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

int byte(char c) { return static_cast<unsigned char>(c); }

TEST(BpeTest, AppliesLowestRankMergeFirst) {
  const std::string dir = testing::make_temp_dir("rank_order");
  // "b c" outranks "a b", so "abc" must become a + bc, never ab + c.
  const auto ids = testing::write_tiny_vocab(dir, {{"b", "c"}, {"a", "b"}});
  const BpeEncoder enc = BpeEncoder::load_dir(dir);
  EXPECT_THAT(enc.encode("abc"), ElementsAre(byte('a'), ids[0]));
  EXPECT_THAT(enc.encode("abd"), ElementsAre(ids[1], byte('d')));
}

TEST(BpeTest, MergesOccurrencesLeftToRightWithoutOverlap) {
  const std::string dir = testing::make_temp_dir("overlap");
  const auto ids = testing::write_tiny_vocab(dir, {{"a", "a"}});
  const BpeEncoder enc = BpeEncoder::load_dir(dir);
  EXPECT_THAT(enc.encode("aaa"), ElementsAre(ids[0], byte('a')));
  EXPECT_THAT(enc.encode("aaaa"), ElementsAre(ids[0], ids[0]));
  EXPECT_THAT(enc.encode("aaaaa"), ElementsAre(ids[0], ids[0], byte('a')));
}

TEST(BpeTest, ChainsMergesIntoLongerTokens) {
  const std::string dir = testing::make_temp_dir("chain");
  const auto ids = testing::write_tiny_vocab(dir, {{"a", "a"}, {"aa", "aa"}, {"aa", "a"}});
  const BpeEncoder enc = BpeEncoder::load_dir(dir);
  // aaaa -> aa aa -> aaaa; aaaaaa -> aa aa aa -> aaaa aa; aaa -> aa a -> aaa.
  EXPECT_THAT(enc.encode("aaaa"), ElementsAre(ids[1]));
  EXPECT_THAT(enc.encode("aaaaaa"), ElementsAre(ids[1], ids[0]));
  EXPECT_THAT(enc.encode("aaa"), ElementsAre(ids[2]));
}

TEST(BpeTest, MergesNeverCrossPreTokenizerPieces) {
  const std::string dir = testing::make_temp_dir("pieces");
  const auto ids = testing::write_tiny_vocab(dir, {{"a", " "}, {" ", "b"}});
  const BpeEncoder enc = BpeEncoder::load_dir(dir);
  // Pieces are "a" and " b": "a " is never a candidate.
  EXPECT_THAT(enc.encode("a b"), ElementsAre(byte('a'), ids[1]));
}

TEST(BpeTest, EndOfTextAndVocabSize) {
  const std::string dir = testing::make_temp_dir("eot");
  testing::write_tiny_vocab(dir, {{"a", "b"}});
  const BpeEncoder enc = BpeEncoder::load_dir(dir);
  EXPECT_EQ(enc.vocab_size(), 258);
  EXPECT_EQ(enc.end_of_text(), 257);
  EXPECT_EQ(enc.decode({enc.end_of_text()}), "<|endoftext|>");
}

TEST(BpeTest, PreTokenizerFollowsGpt2Pattern) {
  const std::string dir = testing::make_temp_dir("pretok");
  testing::write_tiny_vocab(dir, {});
  const BpeEncoder enc = BpeEncoder::load_dir(dir);
  EXPECT_THAT(enc.pre_tokenize("a   b"), ElementsAre("a", "  ", " b"));
  EXPECT_THAT(enc.pre_tokenize("it's they're"), ElementsAre("it", "'s", " they", "'re"));
  EXPECT_THAT(enc.pre_tokenize("IT'S"), ElementsAre("IT", "'", "S"));
  EXPECT_THAT(enc.pre_tokenize("x 12345 !!"), ElementsAre("x", " 12345", " !!"));
  EXPECT_THAT(enc.pre_tokenize("end \n\n"), ElementsAre("end", " \n\n"));
  // JavaScript's \s includes U+FEFF (PCRE2's does not): it must split like a space.
  EXPECT_THAT(enc.pre_tokenize("x\xEF\xBB\xBFy"), ElementsAre("x", "\xEF\xBB\xBF", "y"));
  EXPECT_TRUE(enc.pre_tokenize("").empty());
}

TEST(BpeTest, RoundTripsBytesIncludingControlAndNonAscii) {
  const std::string dir = testing::make_temp_dir("roundtrip");
  testing::write_tiny_vocab(dir, {{"t", "h"}, {"th", "e"}, {" ", "the"}});
  const BpeEncoder enc = BpeEncoder::load_dir(dir);
  for (const std::string& text :
       {std::string("the the  the\n"), std::string("\0\x01\x7f tab\t", 10),
        std::string("caf\xC3\xA9 \xF0\x9F\x98\x80 \xE6\x97\xA5")}) {
    EXPECT_EQ(enc.decode(enc.encode(text)), text);
  }
}

TEST(BpeTest, SanitizeReplacesIllFormedUtf8LikeWhatwg) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(sanitize_utf8("plain caf\xC3\xA9"), "plain caf\xC3\xA9");
  EXPECT_EQ(sanitize_utf8("a\xFF"
                          "b"),
            "a" + fffd + "b");
  EXPECT_EQ(sanitize_utf8("\xE2\x82"), fffd);                    // truncated 3-byte sequence: one
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate: one per byte
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), fffd + fffd);             // overlong
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x98 x"), fffd + " x");       // truncated emoji
  EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // > U+10FFFF
}

TEST(BpeTest, DecodeRejectsUnknownIds) {
  const std::string dir = testing::make_temp_dir("decode_bad");
  testing::write_tiny_vocab(dir, {});
  const BpeEncoder enc = BpeEncoder::load_dir(dir);
  try {
    enc.decode({1, 9999});
    FAIL() << "expected std::out_of_range";
  } catch (const std::out_of_range& e) {
    EXPECT_THAT(e.what(), HasSubstr("token id 9999"));
  }
}

TEST(BpeTest, LoadErrorsNameTheFile) {
  const std::string dir = testing::make_temp_dir("bad_vocab");
  try {
    BpeEncoder::load_dir(dir);
    FAIL() << "expected an error for a missing encoder.json";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir + "/encoder.json"));
  }
  testing::write_tiny_vocab(dir, {});
  testing::write_text_file(dir + "/vocab.bpe", "#version: 0.2\na b c\n");
  try {
    BpeEncoder::load_dir(dir);
    FAIL() << "expected an error for a malformed merge line";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir + "/vocab.bpe:2"));
  }
}

}  // namespace
}  // namespace paci
