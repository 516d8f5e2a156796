// The checkpoint folder's layout as the library writes and reads it: versioned step-N
// folders, the newest complete one is loaded, leftovers of interrupted saves (*.tmp, *.del,
// folders without a manifest) are never taken, checksums and values are verified, and
// --save targets that are not paci's are refused.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "exec/runtime/checkpoint.h"

namespace paci {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string fresh(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  std::string d = std::string(t ? t : "/tmp") + "/" + name;
  fs::remove_all(d);
  return d;
}

CheckpointMeta meta_at(int step) {
  CheckpointMeta m;
  m.model.layers = 2;
  m.partition = {{0, 0, true, false}, {1, 1, false, true}};
  m.schedule = "1f1b";
  m.stages = 2;
  m.step = step;
  m.seed = 5;
  return m;
}

Snapshot snap_of(float base) {
  Snapshot s;
  s.params = {{base, base + 1, base + 2}, {base + 3}};
  s.m = {{0.1f, 0.2f, 0.3f}, {0.4f}};
  s.v = {{1, 2, 3}, {4}};
  return s;
}

TEST(CheckpointLayout, NewestCompleteStepFolderIsLoadedAndOlderOnesRetired) {
  const std::string dir = fresh("layout");
  save_checkpoint(dir, meta_at(2), snap_of(10));
  EXPECT_EQ(save_checkpoint(dir, meta_at(4), snap_of(20)), dir + "/step-000004");
  EXPECT_FALSE(fs::exists(dir + "/step-000002"));
  // Leftovers of an interrupted save are ignored: a *.tmp with a manifest, a folder with none.
  fs::create_directories(dir + "/step-000009.tmp");
  fs::copy_file(dir + "/step-000004/checkpoint.json", dir + "/step-000009.tmp/checkpoint.json");
  fs::create_directories(dir + "/step-000008");
  CheckpointMeta m;
  Snapshot s;
  EXPECT_EQ(load_checkpoint(dir, m, s), dir + "/step-000004");
  EXPECT_EQ(m.step, 4);
  EXPECT_EQ(m.seed, 5u);
  EXPECT_EQ(s.params[1], std::vector<float>{23});
  EXPECT_EQ(s.v[0], (std::vector<float>{1, 2, 3}));
  // The step folder itself can be given too.
  EXPECT_EQ(load_checkpoint(dir + "/step-000004", m, s), dir + "/step-000004");
  // The next save cleans the leftovers up.
  save_checkpoint(dir, meta_at(6), snap_of(30));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"step-000006"});
}

TEST(CheckpointLayout, NonFiniteOrCorruptStageFilesAreRefused) {
  const std::string dir = fresh("bad");
  Snapshot nan = snap_of(1);
  nan.m[1][0] = std::nanf("");
  save_checkpoint(dir, meta_at(2), nan);
  CheckpointMeta m;
  Snapshot s;
  try {
    load_checkpoint(dir, m, s);
    FAIL() << "a NaN moment was loaded";
  } catch (const CheckpointError& e) {
    EXPECT_THAT(e.what(), HasSubstr("stage-1.bin: AdamW first moments (m) hold a non-finite value"));
  }
  const std::string ok = fresh("flip");
  save_checkpoint(ok, meta_at(2), snap_of(1));
  const std::string f = ok + "/step-000002/stage-0.bin";
  std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
  io.seekp(30);
  io.put('\x7f');
  io.close();
  EXPECT_THROW(
      {
        try {
          load_checkpoint(ok, m, s);
        } catch (const CheckpointError& e) {
          EXPECT_THAT(e.what(), HasSubstr("does not match the manifest"));
          throw;
        }
      },
      CheckpointError);
}

TEST(CheckpointLayout, ManifestFieldsOutOfRangeAreRefusedByName) {
  const std::string dir = fresh("fields");
  save_checkpoint(dir, meta_at(3), snap_of(1));
  const std::string path = dir + "/step-000003/checkpoint.json";
  std::ifstream in(path);
  const std::string good((std::istreambuf_iterator<char>(in)), {});
  struct Case { std::string from, to, mention; };
  for (const Case& c : {Case{"\"layers\": 2", "\"layers\": 1e30", "field 'layers' must be an integer"},
                        Case{"\"stages\": 2", "\"stages\": 4294967298", "field 'stages' must be an integer in 1..2147483647"},
                        Case{"\"lr\": 0.0003", "\"lr\": \"x\"", "field 'lr' must be a finite number"},
                        Case{"\"format\": 2", "\"format\": 1", "checkpoint format 1 is not supported"}}) {
    std::string bad = good;
    const size_t at = bad.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from << " in " << good;
    bad.replace(at, c.from.size(), c.to);
    std::ofstream(path, std::ios::trunc) << bad;
    CheckpointMeta m;
    Snapshot s;
    try {
      load_checkpoint(dir, m, s);
      ADD_FAILURE() << c.to << " was accepted";
    } catch (const CheckpointError& e) {
      EXPECT_THAT(e.what(), HasSubstr(c.mention)) << c.to;
      EXPECT_THAT(e.what(), HasSubstr(path));
    }
  }
}

TEST(CheckpointLayout, SaveTargetsThatAreNotPacisAreRefused) {
  const std::string base = fresh("targets");
  fs::create_directories(base + "/user");
  std::ofstream(base + "/user/x") << "x";
  std::ofstream(base + "/file") << "x";
  EXPECT_THROW(check_checkpoint_target(base + "/user"), CheckpointError);
  EXPECT_THROW(check_checkpoint_target(base + "/file"), CheckpointError);
  EXPECT_NO_THROW(check_checkpoint_target(base + "/new/deeper"));
  save_checkpoint(base + "/ck", meta_at(1), snap_of(1));
  std::ofstream(base + "/ck/notes") << "mine";
  EXPECT_NO_THROW(check_checkpoint_target(base + "/ck"));
  EXPECT_EQ(std::distance(fs::directory_iterator(base), fs::directory_iterator()), 3);  // no probe left
}

}  // namespace
}  // namespace paci
