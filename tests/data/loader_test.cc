#include "exec/data/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "exec/data/shard.h"
#include "tests/data/test_support.h"

namespace paci {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A shard holding 0, 1, ..., n-1, so every token says where it came from.
std::string counting_shard(const std::string& name, int n) {
  const std::string path = testing::make_temp_dir(name) + "/tokens.bin";
  std::vector<int> tokens(n);
  std::iota(tokens.begin(), tokens.end(), 0);
  write_token_shard(path, tokens);
  return path;
}

TEST(LoaderTest, TargetsAreInputsShiftedByOne) {
  TokenLoader loader(counting_shard("loader_shift", 100), 2, 4);
  const TokenBatch b = loader.next();
  EXPECT_EQ(b.B, 2);
  EXPECT_EQ(b.T, 4);
  EXPECT_THAT(b.inputs, ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
  EXPECT_THAT(b.targets, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_EQ(loader.position(), 8);
  const TokenBatch c = loader.next();
  EXPECT_EQ(c.inputs.front(), 8);
  EXPECT_EQ(c.targets.back(), 16);
}

TEST(LoaderTest, WrapsToStartWhenTailIsShort) {
  // 20 tokens, B*T = 6: batches start at 0, 6, 12; the next would need tokens 18..24: wrap.
  TokenLoader loader(counting_shard("loader_wrap", 20), 2, 3);
  EXPECT_EQ(loader.batches_per_pass(), 3);
  for (int i = 0; i < 3; ++i) loader.next();
  EXPECT_EQ(loader.position(), 18);
  const TokenBatch wrapped = loader.next();
  EXPECT_THAT(wrapped.inputs, ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_EQ(loader.position(), 6);
}

TEST(LoaderTest, UsesLastTokenWhenItFitsExactly) {
  // 13 tokens = 2 batches of 6 plus the final target.
  TokenLoader loader(counting_shard("loader_exact", 13), 1, 6);
  loader.next();
  const TokenBatch second = loader.next();
  EXPECT_EQ(second.inputs.front(), 6);
  EXPECT_EQ(second.targets.back(), 12);
}

TEST(LoaderTest, SeekToSavedPositionReproducesNextBatch) {
  const std::string path = counting_shard("loader_seek", 50);
  TokenLoader a(path, 2, 3);
  a.next();
  a.next();
  const int64_t saved = a.position();
  const TokenBatch expected = a.next();

  TokenLoader b(path, 2, 3);  // e.g. a resumed run
  b.seek(saved);
  const TokenBatch got = b.next();
  EXPECT_EQ(got.inputs, expected.inputs);
  EXPECT_EQ(got.targets, expected.targets);
  EXPECT_EQ(b.position(), a.position());
  // Also across a wrap: identical streams from the same position.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(a.next().inputs, b.next().inputs) << "batch " << i;
}

TEST(LoaderTest, ResetStartsValidationPassFromTheBeginning) {
  TokenLoader loader(counting_shard("loader_reset", 40), 1, 5);
  const TokenBatch first = loader.next();
  loader.next();
  loader.reset();
  EXPECT_EQ(loader.position(), 0);
  EXPECT_EQ(loader.next().inputs, first.inputs);
}

TEST(LoaderTest, SeekOutsideShardThrows) {
  TokenLoader loader(counting_shard("loader_seek_bad", 30), 1, 4);
  EXPECT_THROW(loader.seek(30), std::out_of_range);
  EXPECT_THROW(loader.seek(-1), std::out_of_range);
}

TEST(LoaderTest, MissingFileSuggestsPrepare) {
  const std::string path = testing::make_temp_dir("loader_missing") + "/sotu_train.bin";
  try {
    TokenLoader loader(path, 1, 4);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    EXPECT_THAT(e.what(), HasSubstr("paci data prepare"));
  }
}

TEST(LoaderTest, ShardTooSmallForOneBatchIsRejected) {
  try {
    TokenLoader loader(counting_shard("loader_small", 8), 2, 4);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("holds 8 tokens, fewer than the 9"));
  }
}

}  // namespace
}  // namespace paci
