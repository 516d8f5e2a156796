#include "exec/data/shard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/data/test_support.h"

namespace paci {
namespace {

using ::testing::HasSubstr;

// Raw bytes of a shard, for corrupting it.
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void set_header_int(const std::string& path, int index, int32_t value) {
  std::string bytes = read_bytes(path);
  std::memcpy(bytes.data() + 4 * index, &value, 4);
  testing::write_text_file(path, bytes);
}

std::string shard_error(const std::string& path) {
  try {
    read_token_shard(path);
  } catch (const ShardError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ShardTest, RoundTripsTokensAndUsesLlmcLayout) {
  const std::string path = testing::make_temp_dir("shard_rt") + "/a.bin";
  const std::vector<int> tokens = {50256, 0, 1, 65535, 15496, 995};
  write_token_shard(path, tokens);
  const std::vector<uint16_t> back = read_token_shard(path);
  EXPECT_EQ(std::vector<int>(back.begin(), back.end()), tokens);
  EXPECT_EQ(read_token_shard_header(path), 6);

  const std::string bytes = read_bytes(path);
  ASSERT_EQ(bytes.size(), 1024u + 2 * tokens.size());
  int32_t header[3];
  std::memcpy(header, bytes.data(), sizeof(header));
  EXPECT_EQ(header[0], 20240520);
  EXPECT_EQ(header[1], 1);
  EXPECT_EQ(header[2], 6);
  uint16_t first;
  std::memcpy(&first, bytes.data() + 1024, 2);
  EXPECT_EQ(first, 50256);
  // The write is atomic: no temporary file is left next to the shard.
  int files = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
}

TEST(ShardTest, EmptyShardRoundTrips) {
  const std::string path = testing::make_temp_dir("shard_empty") + "/e.bin";
  write_token_shard(path, {});
  EXPECT_TRUE(read_token_shard(path).empty());
}

TEST(ShardTest, BadMagicIsNamed) {
  const std::string path = testing::make_temp_dir("shard_magic") + "/m.bin";
  write_token_shard(path, {1, 2, 3});
  set_header_int(path, 0, 123);
  EXPECT_EQ(shard_error(path),
            path + ": bad magic 123 (expected 20240520): not an llm.c token shard");
}

TEST(ShardTest, BadVersionIsNamed) {
  const std::string path = testing::make_temp_dir("shard_version") + "/v.bin";
  write_token_shard(path, {1, 2, 3});
  set_header_int(path, 1, 7);
  EXPECT_THAT(shard_error(path),
              HasSubstr(path + ": unsupported token shard version 7 (expected 1)"));
}

TEST(ShardTest, TruncatedFileReportsBothCounts) {
  const std::string path = testing::make_temp_dir("shard_trunc") + "/t.bin";
  write_token_shard(path, std::vector<int>(100, 7));
  std::filesystem::resize_file(path, 1024 + 2 * 60);
  EXPECT_THAT(shard_error(path), HasSubstr(path + ": has 100 tokens in header but file holds 60"));
  EXPECT_THROW(read_token_shard_header(path), ShardError);
}

TEST(ShardTest, ShorterThanHeaderIsNotAShard) {
  const std::string path = testing::make_temp_dir("shard_short") + "/s.bin";
  testing::write_text_file(path, "hello");
  EXPECT_THAT(shard_error(path), HasSubstr("not an llm.c token shard"));
}

TEST(ShardTest, MissingFileNamesPath) {
  const std::string path = testing::make_temp_dir("shard_missing") + "/none.bin";
  EXPECT_THAT(shard_error(path), HasSubstr(path + ": cannot open token shard"));
}

TEST(ShardTest, RefusesTokensOutsideUint16) {
  const std::string path = testing::make_temp_dir("shard_range") + "/r.bin";
  try {
    write_token_shard(path, {1, 70000});
    FAIL() << "expected ShardError";
  } catch (const ShardError& e) {
    EXPECT_THAT(e.what(), HasSubstr("token 70000 at index 1"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace paci
