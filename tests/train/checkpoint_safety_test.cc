// No lost data: `--save` never destroys what is not a paci checkpoint, a kill at any point of
// a checkpoint replace leaves a loadable checkpoint, corrupt or non-finite checkpoints are
// refused by name, and bad outputs, resumes and flags are refused with one line (exit 2)
// before any work, leaving every file as it was.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

using paci::testing::fresh_path;
using paci::testing::slurp;
using Outcome = paci::testing::CliResult;

Outcome run(const std::string& args, const std::string& env = "") {
  return paci::testing::run_paci(args, env);
}
int lines(const std::string& s) { return paci::testing::count_lines(s); }

const std::string kSmall = "--data synthetic --vocab 256 --layers 2 --seq 16 --batch 2 --microbatches 2";

// Every file under `dir` (relative path -> bytes), to show that nothing changed.
std::map<std::string, std::string> tree(const std::string& dir) {
  std::map<std::string, std::string> t;
  if (!fs::exists(dir)) return t;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string rel = fs::relative(e.path(), dir).string();
    t[rel] = e.is_regular_file() ? slurp(e.path().string()) : std::string("<dir>");
  }
  return t;
}

void write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

uint64_t fnv1a64(const std::string& b) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : b) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// A refusal: exit 2, one line on stderr naming `mention`, no training started.
void expect_refused(const Outcome& r, const std::string& mention, const std::string& what) {
  EXPECT_EQ(r.code, 2) << what << "\n" << r.out << r.err;
  EXPECT_EQ(lines(r.err), 1) << what << "\n" << r.err;
  EXPECT_THAT(r.err, HasSubstr(mention)) << what;
  EXPECT_THAT(r.out, Not(HasSubstr("step "))) << what << ": training started";
}

TEST(CheckpointSafety, SaveRefusesAFolderThatIsNotACheckpointAndARegularFile) {
  const std::string base = fresh_path("refuse");
  fs::create_directories(base + "/user/sub");
  write(base + "/user/notes.txt", "my notes\n");
  write(base + "/user/sub/data.bin", "123");
  write(base + "/file.txt", "precious\n");
  const auto before = tree(base);
  expect_refused(run(fmt::format("train --steps 2 --save {}/user {}", base, kSmall)),
                 "is not a paci checkpoint (it holds", "user folder");
  expect_refused(run(fmt::format("train --steps 2 --save {}/file.txt {}", base, kSmall)),
                 "exists and is not a folder", "regular file");
  EXPECT_EQ(tree(base), before) << "a refused --save changed or left files";
  // An empty folder and a checkpoint folder are fine; other files beside a checkpoint stay.
  fs::create_directories(base + "/empty");
  ASSERT_EQ(run(fmt::format("train --steps 2 --save {}/empty {}", base, kSmall)).code, 0);
  EXPECT_TRUE(fs::exists(base + "/empty/step-000002/checkpoint.json"));
  write(base + "/empty/README", "mine\n");
  Outcome again = run(fmt::format("train --steps 4 --save {}/empty --save-every 2 {}", base, kSmall));
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(slurp(base + "/empty/README"), "mine\n");
  // Only the newest checkpoint is kept, nothing half-written is left.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(base + "/empty")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"README", "step-000004"}));
}

// A kill (SIGKILL, from inside the checkpoint writer) at each point of replacing the step-2
// checkpoint by the step-4 one: --resume still finds a complete checkpoint, and the resumed
// run ends with the bits of an uninterrupted one.
TEST(CheckpointSafety, KillDuringACheckpointReplaceLeavesALoadableCheckpoint) {
  const std::string ref = fresh_path("kill-ref");
  const std::string args = "train --schedule paci --stages 2 --steps 6 --save-every 2 " + kSmall;
  ASSERT_EQ(run(fmt::format("{} --save {}", args, ref)).code, 0);
  const std::string want0 = slurp(ref + "/step-000006/stage-0.bin"), want1 = slurp(ref + "/step-000006/stage-1.bin");
  ASSERT_FALSE(want0.empty());
  for (const char* point : {"stages", "manifest", "commit", "retire"}) {
    const std::string dir = fresh_path(std::string("kill-") + point);
    Outcome killed = run(fmt::format("{} --save {}", args, dir), fmt::format("PACI_TEST_CHECKPOINT_KILL={}@4", point));
    EXPECT_TRUE(killed.code == -1 || killed.code == 128 + 9) << point << ": " << killed.code << killed.err;
    EXPECT_THAT(killed.out, Not(HasSubstr("done:"))) << point;
    // The checkpoint a resume takes: step 2 before the commit, step 4 after it.
    const int expect_step = std::string(point) == "commit" || std::string(point) == "retire" ? 4 : 2;
    Outcome resumed = run(fmt::format("{} --save {} --resume {}", args, dir, dir));
    ASSERT_EQ(resumed.code, 0) << point << ": " << resumed.err;
    EXPECT_THAT(resumed.out, HasSubstr(fmt::format("at step {}", expect_step))) << point << resumed.out;
    EXPECT_TRUE(slurp(dir + "/step-000006/stage-0.bin") == want0) << point;
    EXPECT_TRUE(slurp(dir + "/step-000006/stage-1.bin") == want1) << point;
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    EXPECT_EQ(names, std::vector<std::string>{"step-000006"}) << point << ": leftovers not cleaned up";
  }
}

TEST(CheckpointSafety, CorruptTruncatedAndNonFiniteCheckpointsAreRefusedByName) {
  const std::string base = fresh_path("corrupt");
  ASSERT_EQ(run(fmt::format("train --stages 2 --steps 2 --save {}/good {}", base, kSmall)).code, 0);
  const std::string stage = "step-000002/stage-1.bin";
  auto copy = [&](const std::string& name) {
    fs::copy(base + "/good", base + "/" + name, fs::copy_options::recursive);
    return base + "/" + name;
  };
  // One flipped byte in the middle of the weights.
  const std::string flip = copy("flip");
  std::string bytes = slurp(flip + "/" + stage);
  bytes[bytes.size() / 3] ^= 0x01;
  write(flip + "/" + stage, bytes);
  // Cut short.
  const std::string cut = copy("cut");
  fs::resize_file(cut + "/" + stage, fs::file_size(cut + "/" + stage) - 4);
  // A NaN weight and an inf second moment with correct checksums (as a diverged run saves).
  auto poison = [&](const std::string& name, size_t float_index, float value) {
    const std::string d = copy(name);
    std::string b = slurp(d + "/" + stage);
    std::memcpy(&b[24 + 4 * float_index], &value, 4);  // after the 24-byte header
    write(d + "/" + stage, b);
    nlohmann::json m = nlohmann::json::parse(slurp(d + "/step-000002/checkpoint.json"));
    m["stage_files"][1]["fnv1a64"] = fmt::format("{:016x}", fnv1a64(b));
    write(d + "/step-000002/checkpoint.json", m.dump(1));
    return d;
  };
  const size_t count = (fs::file_size(base + "/good/" + stage) - 24) / 12;
  const std::string nan = poison("nan", 5, std::nanf(""));
  const std::string inf = poison("inf", 2 * count + 7, INFINITY);
  const auto before = tree(base);
  struct Case { std::string dir, mention; };
  for (const Case& c : {Case{flip, "checksum"}, Case{cut, "truncated or corrupt"},
                        Case{nan, "weights hold a non-finite value"},
                        Case{inf, "AdamW second moments (v) hold a non-finite value"}}) {
    Outcome r = run(fmt::format("train --stages 2 --steps 4 --resume {} {}", c.dir, kSmall));
    expect_refused(r, c.mention, c.dir);
    EXPECT_THAT(r.err, HasSubstr(c.dir + "/" + stage)) << "the message names the file";
  }
  EXPECT_EQ(tree(base), before);
  Outcome ok = run(fmt::format("train --stages 2 --steps 4 --resume {}/good {}", base, kSmall));
  EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST(CheckpointSafety, ResumeThatDoesNotMatchTheCheckpointIsRefused) {
  const std::string ck = fresh_path("mismatch");
  ASSERT_EQ(run(fmt::format("train --steps 4 --save {} {}", ck, kSmall)).code, 0);
  const auto before = tree(ck);
  struct Case { std::string extra, mention; };
  for (const Case& c : {Case{"--steps 8 --heads 2", "written with --heads 4, this run has 2"},
                        Case{"--steps 8 --tied", "written with --tied off, this run has on"},
                        Case{"--steps 8 --seed 7", "written with --seed 1337, this run has 7"},
                        Case{"--steps 3", "at step 4, beyond this run's 3 steps; --steps must be at least 4"}}) {
    Outcome r = run(fmt::format("train --resume {} --save {} {} {}", ck, ck, c.extra, kSmall));
    expect_refused(r, c.mention, c.extra);
  }
  EXPECT_EQ(tree(ck), before);
  Outcome none = run(fmt::format("train --steps 2 --resume {} {}", fresh_path("none"), kSmall));
  expect_refused(none, "no checkpoint here", "missing");
}

TEST(CheckpointSafety, OutputsAreCheckedBeforeAnyWork) {
  const std::string base = fresh_path("outputs");
  fs::create_directories(base + "/adir");
  const auto before = tree(base);
  struct Case { std::string flags, mention; };
  for (const Case& c : {Case{"--metrics " + base + "/adir", "--metrics " + base + "/adir: is a folder"},
                        Case{"--trace " + base + "/adir", "--trace " + base + "/adir: is a folder"},
                        Case{"--save /proc/x", "--save /proc/x: cannot write"},
                        Case{"--metrics /proc/x.jsonl", "--metrics /proc/x.jsonl: cannot write"},
                        Case{"--trace /proc/x.json", "--trace /proc/x.json: cannot write"},
                        Case{"--tied --export-llmc /proc/x.bin", "--export-llmc /proc/x.bin: cannot write"},
                        Case{"--metrics " + base + "/nofolder/m.jsonl", "does not exist"}}) {
    Outcome r = run(fmt::format("train --steps 50 {} {}", c.flags, kSmall));
    expect_refused(r, c.mention, c.flags);
    EXPECT_LT(r.seconds, 10) << c.flags;
  }
  EXPECT_EQ(tree(base), before);
  // --metrics writes what it says it wrote.
  Outcome m = run(fmt::format("train --steps 2 --metrics {}/m.jsonl {}", base, kSmall));
  ASSERT_EQ(m.code, 0) << m.err;
  EXPECT_THAT(m.out, HasSubstr("wrote metrics"));
  EXPECT_THAT(slurp(base + "/m.jsonl"), HasSubstr("\"loss\""));
  EXPECT_FALSE(fs::exists(base + "/m.jsonl.tmp"));
}

TEST(CheckpointSafety, StallTimeoutIsRangeChecked) {
  for (const char* v : {"1e300", "0", "-1", "nan", "inf", "2e6"}) {
    Outcome r = run(fmt::format("train --steps 2 --stall-timeout {} {}", v, kSmall));
    expect_refused(r, "must be between 0.001 and 1000000 seconds", v);
    EXPECT_THAT(r.err, HasSubstr("--stall-timeout")) << v;
  }
  EXPECT_EQ(run(fmt::format("train --steps 1 --stall-timeout 1000000 {}", kSmall)).code, 0);
}

}  // namespace
