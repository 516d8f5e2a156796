// `paci train` as a user meets it: flags out of range, missing or corrupt data and
// checkpoints, Ctrl-C, resume, metrics and trace files.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <regex>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "schedules/trace/chrome.h"
#include "tests/support/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using paci::testing::fresh_path;
using paci::testing::slurp;
using Outcome = paci::testing::CliResult;

Outcome run(const std::string& args) { return paci::testing::run_paci(args); }
std::string tmp(const std::string& name) { return fresh_path(name); }

const std::string kSmall =
    "--data synthetic --vocab 256 --layers 2 --seq 16 --batch 2 --microbatches 2";

int lines(const std::string& s) { return paci::testing::count_lines(s); }

TEST(TrainCli, FlagsOutOfRangeGiveOneLineAndExitTwo) {
  struct Case { std::string args; const char* mention; };
  const Case cases[] = {
      {"train --stages 0 " + kSmall, "--stages"},
      {"train --steps 0 " + kSmall, "--steps"},
      {"train --schedule paci --accum 3 --steps 1 " + kSmall, "--accum"},
      {"train --model gpt5 " + kSmall, "--model"},
      {"train --batch 0 " + kSmall, "--batch"},
      {"train --seq 100000 --data synthetic --vocab 256", "--seq"},
      {"train --lr -1 " + kSmall, "--lr"},
      {"train --partition 1,x " + kSmall, "--partition"},
      {"train --stages 2 --partition 1,1,1 " + kSmall, "--partition: blocks sum to 3 but the model has 2 blocks"},
      {"train --stages 2 --partition 2 " + kSmall, "--partition has 1 entries, the schedule has 2 stages"},
      {"train --decay-steps -1 " + kSmall, "--decay-steps"},
      {"train --heads 5 " + kSmall, "heads"},
      {"train --save-every 2 " + kSmall, "--save-every needs --save"},
      {"train --data /nonexistent/x_train.bin", "does not exist"},
      {"train --data foo.txt", "--data"},
      {"train --vocab 100", "--vocab only applies to --data synthetic"},
  };
  for (const Case& c : cases) {
    Outcome r = run(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.err;
    EXPECT_EQ(lines(r.err), 1) << c.args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.mention)) << c.args;
  }
}

TEST(TrainCli, CorruptOrMissingCheckpointIsAClearError) {
  std::string ck = tmp("ck");
  ASSERT_EQ(run(fmt::format("train --steps 2 --save {} {}", ck, kSmall)).code, 0);
  Outcome missing = run(fmt::format("train --steps 2 --resume {} {}", tmp("none"), kSmall));
  EXPECT_NE(missing.code, 0);
  EXPECT_THAT(missing.err, HasSubstr("no checkpoint here"));
  // Truncate a stage file.
  std::string stage = ck + "/step-000002/stage-0.bin";
  fs::resize_file(stage, fs::file_size(stage) - 8);
  Outcome cut = run(fmt::format("train --steps 4 --resume {} {}", ck, kSmall));
  EXPECT_NE(cut.code, 0);
  EXPECT_THAT(cut.err, HasSubstr("truncated or corrupt"));
  EXPECT_EQ(lines(cut.err), 1) << cut.err;
  // A checkpoint of another configuration.
  std::string ck2 = tmp("ck2");
  ASSERT_EQ(run(fmt::format("train --steps 2 --save {} {}", ck2, kSmall)).code, 0);
  Outcome other = run(fmt::format("train --steps 4 --resume {} {} --layers 3", ck2, kSmall));
  EXPECT_NE(other.code, 0);
  EXPECT_THAT(other.err, HasSubstr("--layers"));
}

TEST(TrainCli, ResumeContinuesBitExactly) {
  // Uninterrupted: 6 steps, checkpoints every 2 (each checkpoint ends a pipeline segment).
  std::string full = tmp("full"), part = tmp("part");
  for (const char* schedule : {"1f1b", "paci"}) {
    ASSERT_EQ(run(fmt::format("train --schedule {} --stages 2 --steps 6 --save {} --save-every 2 {}",
                              schedule, full, kSmall)).code, 0);
    // The same run (same 6-step LR schedule) stopped after 4 steps and resumed to 6.
    ASSERT_EQ(run(fmt::format("train --schedule {} --stages 2 --steps 4 --decay-steps 6 --save {} --save-every 2 {}",
                              schedule, part, kSmall)).code, 0);
    Outcome r = run(fmt::format("train --schedule {} --stages 2 --steps 6 --save {} --save-every 2 --resume {} {}",
                                schedule, part, part, kSmall));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("resumed from"));
    for (int s = 0; s < 2; ++s)
      EXPECT_TRUE(slurp(fmt::format("{}/step-000006/stage-{}.bin", full, s)) ==
                  slurp(fmt::format("{}/step-000006/stage-{}.bin", part, s)))
          << schedule << " stage " << s;
  }
}

// Ctrl-C and SIGTERM: tests/train/interrupt_test.cc.

TEST(TrainCli, LlmcWeightsRoundTripThroughTraining) {
  // Export after training, start a new run from the file with a negligible learning rate: its
  // final validation loss is the first run's (same weights; printed to 4 decimals; the 1e-12
  // learning rate moves weights by ~1e-12, far below that).
  std::string w = tmp("w.bin");
  Outcome a = run(fmt::format("train --tied --steps 3 --export-llmc {} {}", w, kSmall));
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_THAT(a.out, HasSubstr("wrote llm.c weights"));
  Outcome b = run(fmt::format("train --tied --steps 1 --init-llmc {} --lr 1e-12 {}", w, kSmall));
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_THAT(b.out, HasSubstr("initialised from"));
  std::smatch ma, mb;
  ASSERT_TRUE(std::regex_search(a.out, ma, std::regex("val loss ([0-9.]+)"))) << a.out;
  ASSERT_TRUE(std::regex_search(b.out, mb, std::regex("val loss ([0-9.]+)"))) << b.out;
  EXPECT_EQ(ma[1], mb[1]);
  Outcome untied = run(fmt::format("train --steps 1 --export-llmc {} {}", w, kSmall));
  EXPECT_EQ(untied.code, 2);
  EXPECT_THAT(untied.err, HasSubstr("--export-llmc"));
  Outcome other = run(fmt::format("train --tied --heads 2 --steps 1 --init-llmc {} {}", w, kSmall));
  EXPECT_EQ(other.code, 2);
  EXPECT_THAT(other.err, HasSubstr("--init-llmc"));
}

TEST(TrainCli, MetricsAndTraceFiles) {
  std::string m = tmp("m.jsonl"), t = tmp("t.json");
  Outcome r = run(fmt::format("train --schedule paci --stages 2 --steps 6 --eval-every 3 --metrics {} --trace {} {}",
                              m, t, kSmall));
  ASSERT_EQ(r.code, 0) << r.err;
  int train_rows = 0, val_rows = 0;
  std::istringstream in(slurp(m));
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains("loss")) {
      ++train_rows;
      for (const char* k : {"step", "lr", "tokens_per_s", "time_s"}) EXPECT_TRUE(j.contains(k)) << line;
    }
    if (j.contains("val_loss")) {
      ++val_rows;
      EXPECT_TRUE(j.contains("val_ppl"));
    }
  }
  EXPECT_EQ(train_rows, 6);
  EXPECT_EQ(val_rows, 2);  // step 3 and the end
  paci::Trace trace = paci::read_chrome_trace(t);
  EXPECT_EQ(trace.origin, "measured");
  EXPECT_EQ(trace.actions.size(), 2u * (6 * 2 * 2 + 6));
  for (const auto& a : trace.actions) EXPECT_LE(a.start, a.end);
}

}  // namespace
