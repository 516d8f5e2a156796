// The `paci` command as a user meets it: help on every command, one clear line and exit
// code 2 for flags out of range, working show/export/import.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cli_runner.h"

namespace {

using ::testing::HasSubstr;

using paci::testing::count_lines;
using paci::testing::slurp;

paci::testing::CliResult run(const std::string& args) { return paci::testing::run_paci(args); }

int lines(const std::string& s) { return count_lines(s); }

TEST(Cli, HelpOnEveryCommand) {
  for (const char* cmd : {"", "schedules", "show", "sim"}) {
    auto r = run(fmt::format("{} --help", cmd));
    EXPECT_EQ(r.code, 0) << cmd << r.err;
    EXPECT_THAT(r.out, HasSubstr("Usage")) << cmd;
  }
}

TEST(Cli, SchedulesListsOneLineEach) {
  auto r = run("schedules");
  ASSERT_EQ(r.code, 0);
  for (const char* name : {"gpipe", "1f1b", "paci", "interleaved-1f1b", "zb-h1", "pipedream", "pipedream-2bw"})
    EXPECT_THAT(r.out, HasSubstr(fmt::format("{} ", name)));
}

TEST(Cli, FlagsOutOfRangeGiveOneLineAndExitTwo) {
  struct Case { const char* args; const char* mention; };
  const Case cases[] = {
      {"show --schedule 1f1b --stages 0 --microbatches 4", "--stages"},
      {"show --schedule 1f1b --stages 4 --microbatches 0", "--microbatches"},
      {"show --schedule paci --stages 4 --microbatches 4 --accum 0", "--accum"},
      {"show --schedule nosuch --stages 4 --microbatches 4", "unknown schedule 'nosuch'"},
      {"show --schedule interleaved-1f1b --stages 4 --microbatches 6 --virtual 2", "--microbatches"},
      {"show --schedule 1f1b --stages 4 --microbatches 4 --virtual 2", "--virtual"},
      {"show --schedule 1f1b --stages x --microbatches 4", "--stages"},
      {"show --file /nonexistent/s.json", "cannot open"},
      {"show", "--schedule"},
  };
  for (const Case& c : cases) {
    auto r = run(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.err;
    EXPECT_EQ(lines(r.err), 1) << c.args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.mention)) << c.args;
    EXPECT_THAT(r.err, HasSubstr("error:")) << c.args;
  }
}

TEST(Cli, ShowPrintsTimelineAndTableAndExports) {
  const std::string json = ::testing::TempDir() + "/paci.json";
  const std::string csv = ::testing::TempDir() + "/paci.csv";
  auto r = run(fmt::format("show --schedule paci --stages 4 --microbatches 4 --steps 2 --accum 2 --export {}", json));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("device  0  0F0 0F1 0F2 0F3"));
  EXPECT_THAT(r.out, HasSubstr("0B1|"));  // an optimizer step after the second backward
  EXPECT_THAT(r.out, HasSubstr("max drift"));
  // Stage 0 of P=4, a=2: in-flight 4, one weight copy, 4 updates, max drift ceil(3/2) = 2.
  EXPECT_THAT(r.out, HasSubstr("    0      0         4       1       4         2"));
  auto back = run(fmt::format("show --file {}", json));
  ASSERT_EQ(back.code, 0) << back.err;
  EXPECT_THAT(back.out, HasSubstr("    0      0         4       1       4         2"));
  // PyTorch's CSV holds one step with the optimizer outside: pipedream (an update per
  // micro-batch) is refused, 1f1b is written and read back.
  auto refused = run(fmt::format("show --schedule pipedream -P 3 -M 4 --export {}", csv));
  EXPECT_EQ(refused.code, 2);
  EXPECT_THAT(refused.err, HasSubstr("cannot be written as a PyTorch CSV"));
  ASSERT_EQ(run(fmt::format("show --schedule 1f1b -P 3 -M 4 --export {}", csv)).code, 0);
  EXPECT_EQ(slurp(csv).find("OPT"), std::string::npos);
  auto fromcsv = run(fmt::format("show --file {} --policy stash", csv));
  ASSERT_EQ(fromcsv.code, 0) << fromcsv.err;
  EXPECT_THAT(fromcsv.out, HasSubstr("weight policy stash"));
}

TEST(Cli, ImportedDeadlockIsReportedWithTimeline) {
  const std::string path = ::testing::TempDir() + "/dead.csv";
  std::ofstream(path) << "0F0,0B0,0F1,0B1\n1F1,1B1,1F0,1B0\n";
  auto r = run(fmt::format("show --file {}", path));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("deadlock at device 0, position 1"));
  EXPECT_THAT(r.err, HasSubstr(">>0B0<<"));
}

}  // namespace
