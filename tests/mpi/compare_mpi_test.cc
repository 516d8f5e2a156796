// `paci compare` under mpirun (one process per rank): rank 0 gathers the whole run, predicts it
// from the calibration and reports; the prediction equals the threaded run's (the same
// schedule, partition and calibration), the measured allocator peaks equal the threaded run's
// (the same allocations, in another process), and drift is identical.
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

namespace paci {
namespace {

using Outcome = paci::testing::CliResult;

Outcome sh(const std::string& cmd) { return paci::testing::run_shell_merged(cmd); }

TEST(CompareMpi, RankZeroReportsTheWholeRun) {
  const std::string paci = paci::testing::paci_binary(), dir = ::testing::TempDir();
  const std::string model = "--model tiny --vocab 512 --layers 3 --seq 32 --batch 2";
  Outcome cal = sh(fmt::format("{} calibrate {} --out {}/cal.json", paci, model, dir));
  ASSERT_EQ(cal.code, 0) << cal.out;
  const std::string args = fmt::format("compare --schedule 1f1b --stages 2 --microbatches 4 --steps 4 {} "
                                       "--calibration {}/cal.json", model, dir);
  Outcome threads = sh(fmt::format("{} {} --json {}/t.json", paci, args, dir));
  ASSERT_EQ(threads.code, 0) << threads.out;
  Outcome ranks = sh(fmt::format("{} {} --json {}/m.json", paci::testing::mpirun_paci(2), args, dir));
  ASSERT_EQ(ranks.code, 0) << ranks.out;
  EXPECT_NE(ranks.out.find("one process per rank (2)"), std::string::npos) << ranks.out;
  const nlohmann::json t = nlohmann::json::parse(paci::testing::slurp(dir + "/t.json"));
  const nlohmann::json m = nlohmann::json::parse(paci::testing::slurp(dir + "/m.json"));
  EXPECT_EQ(t["predicted"]["step_time"], m["predicted"]["step_time"]);
  ASSERT_EQ(m["devices"].size(), 2u);
  for (int d = 0; d < 2; ++d) {
    EXPECT_EQ(t["devices"][d]["measured_peak_bytes"], m["devices"][d]["measured_peak_bytes"]) << d;
    EXPECT_GT(m["devices"][d]["measured_busy"].get<double>(), 0) << d;
  }
  EXPECT_EQ(t["stage_drift"], m["stage_drift"]);
  // Without a calibration, ranks would each calibrate: refused with one line.
  Outcome bad = sh(fmt::format("{} compare --schedule 1f1b --stages 2 --microbatches 4 {}",
                               paci::testing::mpirun_paci(2), model));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("under mpirun, give --calibration"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace paci
