// Bad input to `paci train` (issue 12, item 4): token shards and llm.c checkpoints that are not
// regular files, corrupt, or hold tokens beyond the vocabulary; and training flags out of range.
// Each case: exit 2, one line naming the input, bounded time and memory (tests/schedules/bad_input.h).
#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/schedules/bad_input.h"
#include "tests/support/cli_runner.h"

namespace paci::testing {
namespace {

std::string dir() {
  static const std::string d = [] {
    std::string p = fresh_path("bad-train-input");
    std::filesystem::create_directories(p);
    return p;
  }();
  return d;
}

// An llm.c token shard: 256 int32 header (magic, version, count), then uint16 tokens.
std::string shard(const std::string& name, const std::vector<uint16_t>& tokens, int32_t magic = 20240520) {
  std::vector<int32_t> header(256, 0);
  header[0] = magic;
  header[1] = 1;
  header[2] = static_cast<int32_t>(tokens.size());
  std::string bytes(1024 + 2 * tokens.size(), '\0');
  std::memcpy(bytes.data(), header.data(), 1024);
  if (!tokens.empty()) std::memcpy(bytes.data() + 1024, tokens.data(), 2 * tokens.size());
  return write_text(dir() + "/" + name, bytes);
}

std::vector<uint16_t> tokens(size_t n) {
  std::vector<uint16_t> t(n);
  for (size_t i = 0; i < n; ++i) t[i] = static_cast<uint16_t>((i * 7919) % 50257);
  return t;
}

constexpr const char* kTrain = "train --model tiny --stages 1 --microbatches 2 --steps 1";

TEST(BadTrainInput, ShardsAreCheckedAtLoadWithExit2) {
  auto ok = run_paci(fmt::format("{} --data {}", kTrain, shard("ok_train.bin", tokens(600))));
  ASSERT_EQ(ok.code, 0) << ok.err;

  const std::string fifo = dir() + "/fifo_train.bin";
  mkfifo(fifo.c_str(), 0644);
  expect_refused(fmt::format("{} --data {}", kTrain, fifo), "token shard " + fifo + ": is a FIFO; a regular file is required");
  const std::string folder = dir() + "/folder_train.bin";
  std::filesystem::create_directories(folder);
  expect_refused(fmt::format("{} --data {}", kTrain, folder), "folder_train.bin: is a directory");
  expect_refused(fmt::format("{} --data {}", kTrain, shard("magic_train.bin", tokens(600), 1234)),
                 "magic_train.bin: bad magic 1234 (expected 20240520): not an llm.c token shard");
  std::vector<uint16_t> t = tokens(600);
  t[3] = 60000;
  expect_refused(fmt::format("{} --data {}", kTrain, shard("vocab_train.bin", t)),
                 "vocab_train.bin: token 60000 at position 3 is outside the model's vocabulary of 50257");
  std::string cut = shard("cut_train.bin", tokens(600));
  std::filesystem::resize_file(cut, 1024 + 100);
  expect_refused(fmt::format("{} --data {}", kTrain, cut), "cut_train.bin: has 600 tokens in header but file holds 50");
  // The validation shard beside the training shard is checked the same way.
  shard("val_train.bin", tokens(600));
  t = tokens(600);
  t[599] = 65535;
  shard("val_val.bin", t);
  expect_refused(fmt::format("{} --data {}/val_train.bin", kTrain, dir()), "val_val.bin: token 65535 at position 599");
}

TEST(BadTrainInput, LlmcCheckpointsAreCheckedWithExit2) {
  const std::string t = "train --model tiny --tied --data synthetic --stages 1 --microbatches 2 --steps 1";
  const std::string fifo = dir() + "/model-fifo.bin";
  mkfifo(fifo.c_str(), 0644);
  expect_refused(fmt::format("{} --init-llmc {}", t, fifo), "model-fifo.bin: is a FIFO");
  expect_refused(fmt::format("{} --init-llmc {}", t, dir()), "is a directory");
  const std::string bad = write_text(dir() + "/model-bad.bin", std::string(2048, '\x07'));
  expect_refused(fmt::format("{} --init-llmc {}", t, bad), "model-bad.bin has magic 117901063, expected 20240326");
  std::vector<int32_t> header(256, 0);
  header[0] = 20240326, header[1] = 3, header[2] = 64, header[3] = 64, header[4] = 2000000000,
  header[5] = 2, header[6] = 2000000000, header[7] = 64;
  std::string bytes(1024, '\0');
  std::memcpy(bytes.data(), header.data(), 1024);
  expect_refused(fmt::format("{} --init-llmc {}", t, write_text(dir() + "/model-huge.bin", bytes)),
                 "model-huge.bin has 1024 bytes but its header (L2000000000 C2000000000");
}

TEST(BadTrainInput, TrainingFlagsAreRangeChecked) {
  expect_refused(std::string(kTrain) + " --lr inf", "--lr must be in (0, 10] (got inf)");
  expect_refused(std::string(kTrain) + " --lr nan", "--lr must be in (0, 10] (got nan)");
  expect_refused(std::string(kTrain) + " --weight-decay nan", "--weight-decay must be in 0..10 (got nan)");
  expect_refused(std::string(kTrain) + " --min-lr nan", "--min-lr must be in 0..1 (got nan)");
  expect_refused(std::string(kTrain) + " --warmup -5", "--warmup must be >= 0 steps (got -5");
  expect_refused(std::string(kTrain) + " --batch 100000", "--batch must be in 1..65536 (got 100000)");
  // Under the fixed cap but far beyond any machine's memory: refused by the estimate, before
  // anything is allocated.
  expect_refused("train --model gpt2-124m --steps 1 --batch 60000", "--batch 60000 with L12 C768");
  expect_refused(std::string(kTrain) + " --channels 1000000", "--channels must be in 1..65536");
  expect_refused(std::string(kTrain) + " --partition 1,,1", "--partition: entry 2");
}

}  // namespace
}  // namespace paci::testing
