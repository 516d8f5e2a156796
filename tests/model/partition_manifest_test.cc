// The paci checkpoint manifest records the partition with its half-block boundaries, reads
// manifests written before stages could split a block, and refuses a partition that does not
// cover the model. (The trainer refuses a resume whose partition differs from the saved one by
// comparing StagePartitions, so the split flags must survive the round trip.)
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "exec/model/partition.h"
#include "exec/runtime/checkpoint.h"

namespace paci {
namespace {

namespace fs = std::filesystem;

std::string fresh(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  std::string d = std::string(t ? t : "/tmp") + "/" + name;
  fs::remove_all(d);
  return d;
}

CheckpointMeta meta_with(const std::string& layout) {
  CheckpointMeta m;
  m.model = preset("tiny");
  m.partition = parse_layout(m.model, layout);
  m.schedule = "1f1b";
  m.stages = static_cast<int>(m.partition.size());
  m.step = 3;
  m.seed = 5;
  return m;
}

Snapshot snap_for(size_t stages) {
  Snapshot s;
  s.params.assign(stages, {1.0f, 2.0f});
  s.m.assign(stages, {0.1f, 0.2f});
  s.v.assign(stages, {1.0f, 2.0f});
  return s;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(PartitionManifest, HalfBlockBoundariesRoundTrip) {
  const std::string dir = fresh("halves");
  const CheckpointMeta saved = meta_with("E+0.5,1,0.5+H");
  const std::string at = save_checkpoint(dir, saved, snap_for(3));
  CheckpointMeta m;
  Snapshot s;
  load_checkpoint(dir, m, s);
  ASSERT_EQ(m.partition.size(), 3u);
  EXPECT_EQ(m.partition, saved.partition);
  EXPECT_EQ(format_layout(m.partition), "E+0.5,1,0.5+H");
  // The same stage count with whole blocks is a different partition (a resume is refused).
  EXPECT_NE(m.partition, meta_with("E+1,0.5,0.5+H").partition);
  EXPECT_NE(m.partition, parse_layout(m.model, "1,1,H"));
}

TEST(PartitionManifest, OldFourFieldEntriesAndCorruptPartitions) {
  const std::string dir = fresh("old");
  const std::string at = save_checkpoint(dir, meta_with("1,1"), snap_for(2));
  const std::string path = at + "/checkpoint.json";
  const std::string text = read(path);
  // Rewrite the entries as a manifest of the previous version wrote them.
  const std::string old = std::regex_replace(text, std::regex(R"(,\s*false,\s*false\s*\])"), "]");
  ASSERT_NE(old, text) << text;
  std::ofstream(path, std::ios::trunc) << old;
  CheckpointMeta m;
  Snapshot s;
  ASSERT_NO_THROW(load_checkpoint(dir, m, s));
  EXPECT_EQ(m.partition, parse_layout(m.model, "1,1"));

  // A partition that skips a half is refused as corrupt.
  const std::string dir2 = fresh("corrupt");
  CheckpointMeta bad = meta_with("1.5,0.5");
  bad.partition[1].starts_with_mlp = false;  // block 1's attention half on both stages
  const std::string at2 = save_checkpoint(dir2, bad, snap_for(2));
  try {
    load_checkpoint(dir2, m, s);
    ADD_FAILURE() << "loaded a partition that does not cover the model";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("partition"), std::string::npos) << e.what();
  }
  (void)at2;
}

}  // namespace
}  // namespace paci
