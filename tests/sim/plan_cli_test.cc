// `paci plan` as a user meets it: the front and recommendation printed, --csv / --json holding
// every candidate, bad flags refused with one line and exit 2.
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/cli_runner.h"

namespace {

using ::testing::HasSubstr;
using paci::testing::CliResult;
using paci::testing::fresh_path;
using paci::testing::run_paci;
using paci::testing::slurp;

TEST(PlanCli, PrintsTheFrontAndWritesEveryCandidate) {
  const std::string csv = fresh_path("plan.csv"), js = fresh_path("plan.json");
  CliResult r = run_paci(fmt::format("plan --model gpt2-350m -P 4,8 --global-batch 32 --memory-limit 20 --csv {} --json {}",
                                     csv, js));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Pareto front"));
  EXPECT_THAT(r.out, HasSubstr("recommended: "));
  nlohmann::json j = nlohmann::json::parse(slurp(js));
  EXPECT_EQ(j["format"], "paci-plan");
  const auto& cands = j["candidates"];
  ASSERT_GT(cands.size(), 20u);
  EXPECT_EQ(j["counts"]["candidates"], cands.size());
  // The recommendation fits the limit and is on the printed line.
  const int rec = j["recommended"];
  ASSERT_GE(rec, 0);
  EXPECT_LE(cands[rec]["peak_memory"].get<double>(), 20.0 * (1ull << 30));
  EXPECT_LE(cands[rec]["max_drift"].get<int>(), 1);  // the default --max-drift
  // One CSV row per candidate, statuses from the documented set.
  std::istringstream in(slurp(csv));
  std::string line;
  std::getline(in, line);
  EXPECT_THAT(line, HasSubstr("schedule,P,v,micro_batch"));
  size_t rows = 0;
  while (std::getline(in, line)) {
    ++rows;
    EXPECT_TRUE(line.find(",front,") != std::string::npos || line.find(",simulated,") != std::string::npos ||
                line.find(",over-memory,") != std::string::npos || line.find(",dominated,") != std::string::npos ||
                line.find(",invalid,") != std::string::npos)
        << line;
  }
  EXPECT_EQ(rows, cands.size());
}

TEST(PlanCli, BadFlagsGiveOneLineAndExitTwo) {
  struct Case { const char* args; const char* mention; };
  const Case cases[] = {
      {"plan --global-batch 0", "--global-batch"},
      {"plan -P 0", "--stages"},
      {"plan -P x", "--stages"},
      {"plan --mb-sizes 3 --global-batch 8", "--mb-sizes"},
      {"plan --schedules 1f1b,nope", "--schedules"},
      {"plan --schedules pipedream", "--schedules"},
      {"plan --backward stash", "--backward"},
      {"plan --virtual 1", "--virtual"},
      {"plan --max-drift -2", "--max-drift"},
      {"plan --memory-limit -3", "--memory-limit"},
      {"plan --model gpt5", "--model"},
      {"plan --device tpu", "--device"},
      {"plan --precision fp8", "--precision"},
      {"plan --csv /nonexistent/x.csv", "--csv"},
  };
  for (const Case& c : cases) {
    CliResult r = run_paci(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.err;
    EXPECT_EQ(paci::testing::count_lines(r.err), 1) << c.args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.mention)) << c.args;
  }
}

}  // namespace
