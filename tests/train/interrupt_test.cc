// Ctrl-C (SIGINT) and SIGTERM landing in the middle of a pipeline segment: the run stops,
// writes nothing, says from which step a resume restarts (the last checkpoint), exits
// 130 / 143, and `--resume` then ends with the same bits (weights, optimizer state, losses)
// as an uninterrupted run with the same --save-every. Without a checkpoint behind it the
// run says that nothing was saved and leaves no folder.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using paci::testing::fresh_path;
using paci::testing::paci_binary;
using paci::testing::slurp;
using Outcome = paci::testing::CliResult;

// About 10 ms per step on one core: a 20-step segment lasts long enough to land in.
const std::string kArgs =
    "train --schedule paci --stages 2 --microbatches 4 --steps 60 --save-every 20 --data synthetic "
    "--vocab 256 --layers 2 --seq 64 --batch 4";

struct Interrupted {
  int code = -1;
  std::string out;
};

// Starts `args`, waits until `ready` exists (or the output mentions a step when ready is
// ""), lets it run `delay` more, then sends `sig`.
Interrupted interrupt(const std::string& args, int sig, const std::string& ready, std::chrono::milliseconds delay) {
  const std::string out = fresh_path("interrupt.out");
  pid_t pid = fork();
  if (pid == 0) {
    std::string cmd = fmt::format("exec {} {} >{} 2>&1", paci_binary(), args, out);
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 600; ++i) {
    if (ready.empty() ? slurp(out).find("step ") != std::string::npos : fs::exists(ready)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(delay);
  kill(pid, sig);
  int status = 0;
  waitpid(pid, &status, 0);
  Interrupted r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  return r;
}

std::string final_line(const std::string& out) {
  std::smatch m;
  return std::regex_search(out, m, std::regex("final train loss [0-9.]+[^\n]*")) ? m[0].str() : "";
}

void interrupted_mid_segment_then_resumed(int sig, int expect_code, const char* name) {
  const std::string ref = fresh_path(std::string("ref-") + name), dir = fresh_path(std::string("int-") + name);
  Outcome whole = paci::testing::run_paci(fmt::format("{} --save {}", kArgs, ref));
  ASSERT_EQ(whole.code, 0) << whole.err;
  // Interrupt after the step-20 checkpoint, during the segment 21..40 (retried if it lands
  // on a boundary, which is a different case).
  // A few steps' time (the reference run's mean, start-up included, so on the long side).
  const long step_ms = std::max(20L, static_cast<long>(whole.seconds * 1000 / 60));
  int at = 0;
  Interrupted r;
  for (int attempt = 0; attempt < 4; ++attempt) {
    fs::remove_all(dir);
    r = interrupt(fmt::format("{} --save {}", kArgs, dir), sig, dir + "/step-000020",
                  std::chrono::milliseconds(step_ms * 3 * (attempt + 1)));
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.out, m, std::regex("interrupted \\((SIGINT|SIGTERM)\\) at step ([0-9]+)")))
        << r.out;
    EXPECT_EQ(m[1].str(), name);
    at = std::stoi(m[2].str());
    if (at % 20 != 0) break;
  }
  ASSERT_NE(at % 20, 0) << "never landed mid-segment\n" << r.out;
  EXPECT_EQ(r.code, expect_code) << r.out;
  const int boundary = at / 20 * 20;
  EXPECT_THAT(r.out, HasSubstr(fmt::format("nothing written; --resume {} restarts from step {}", dir, boundary)))
      << r.out;
  // Nothing newer than the boundary was written, nothing half-written is left.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{fmt::format("step-{:06}", boundary)});
  Outcome resumed = paci::testing::run_paci(fmt::format("{} --save {} --resume {}", kArgs, dir, dir));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_THAT(resumed.out, HasSubstr(fmt::format("at step {}", boundary)));
  for (int s = 0; s < 2; ++s)
    EXPECT_TRUE(slurp(fmt::format("{}/step-000060/stage-{}.bin", ref, s)) ==
                slurp(fmt::format("{}/step-000060/stage-{}.bin", dir, s)))
        << name << ": stage " << s << " differs from the uninterrupted run";
  EXPECT_FALSE(final_line(whole.out).empty()) << whole.out;
  EXPECT_EQ(final_line(resumed.out), final_line(whole.out));
}

TEST(Interrupt, CtrlCMidSegmentThenResumeIsBitIdentical) { interrupted_mid_segment_then_resumed(SIGINT, 130, "SIGINT"); }

TEST(Interrupt, SigtermMidSegmentThenResumeIsBitIdentical) {
  interrupted_mid_segment_then_resumed(SIGTERM, 143, "SIGTERM");
}

TEST(Interrupt, BeforeTheFirstCheckpointNothingIsSavedAndTheRunSaysSo) {
  const std::string dir = fresh_path("first-segment");
  // One segment (no --save-every): an interrupt lands before any checkpoint.
  Interrupted r = interrupt(fmt::format("train --steps 100000 --save {} --data synthetic --vocab 256 --layers 2 "
                                        "--seq 16 --batch 2 --microbatches 2", dir),
                            SIGINT, "", std::chrono::milliseconds(200));
  EXPECT_EQ(r.code, 130) << r.out;
  EXPECT_THAT(r.out, HasSubstr("nothing saved, no checkpoint was written yet"));
  EXPECT_THAT(r.out, HasSubstr("a new run starts from step 0"));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists("paci-checkpoint"));
}

}  // namespace
