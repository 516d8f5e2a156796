// `paci calibrate` and `paci compare` end to end on a small model: files are written, the
// printed errors are the relative errors of the JSON numbers, drift matches exactly and the
// memory prediction is exact (the same byte counts enter both sides).
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "schedules/trace/chrome.h"
#include "tests/support/cli_runner.h"

namespace {

using ::testing::HasSubstr;

using paci::testing::slurp;

int run(const std::string& args, std::string* out) {
  paci::testing::CliResult r = paci::testing::run_paci(args);
  *out = r.out + r.err;
  return r.code;
}

const std::string kModel = "--model tiny --vocab 512 --layers 3 --seq 32 --batch 2";

TEST(CompareCli, CalibrateThenCompare) {
  const std::string dir = ::testing::TempDir();
  std::string out;
  // --partition: the layout is measured with the calibration's own runs, and printed.
  ASSERT_EQ(run(fmt::format("calibrate {} --partition 1.5,1.5 --out {}/cal.json", kModel, dir), &out), 0) << out;
  EXPECT_NE(out.find("partition E+1.5,1.5+H (measured with the calibration runs)"), std::string::npos) << out;
  for (const char* layout : {"partition E,3,H", "partition E+3+H", "partition E+0.5,0.5,2+H", "partition E+1.5,1.5+H"})
    EXPECT_NE(out.find(layout), std::string::npos) << layout << "\n" << out;
  nlohmann::json cal = nlohmann::json::parse(slurp(dir + "/cal.json"));
  EXPECT_EQ(cal["format"], "paci-calibration");
  EXPECT_EQ(cal["version"], 3);
  // The GEMM curve: the default grid, widths 64 x {1/2, 3/4, 1, 3/2, 2} by 2 x 32 tokens x {1/2, 1, 2}.
  ASSERT_TRUE(cal.contains("gemm")) << cal.dump();
  EXPECT_EQ(cal["gemm"]["points"].size(), 15u);
  EXPECT_EQ(cal["gemm"]["vocab"], 512);
  for (const auto& p : cal["gemm"]["points"]) EXPECT_GT(p["mlp"]["f"].get<double>(), 0);
  // Contention from the two-device run of its own (the model split after half its blocks),
  // a slowdown >= 0 for every kind.
  EXPECT_THAT(out, HasSubstr("measuring contention: 2 stages on 2 devices, partition E+1.5,1.5+H"));
  for (const char* k : {"F", "B", "I", "W", "OPT", "FB"}) {
    ASSERT_TRUE(cal["contention"].contains(k)) << k << " " << cal.dump();
    EXPECT_GE(cal["contention"][k].get<double>(), 0) << k;
  }
  // The two halves of a block are fitted apart (the split run separates them).
  EXPECT_GT(cal["attention"]["f"].get<double>(), 0);
  EXPECT_GT(cal["mlp"]["f"].get<double>(), 0);
  ASSERT_EQ(run(fmt::format("compare --schedule paci --stages 2 --microbatches 4 --steps 6 --accum 2 {} "
                            "--calibration {}/cal.json --json {}/c.json --trace {}/c.trace.json --svg {}/c.svg "
                            "--repeat 3",
                            kModel, dir, dir, dir, dir),
                &out),
            0)
      << out;
  nlohmann::json c = nlohmann::json::parse(slurp(dir + "/c.json"));
  const double m = c["measured"]["step_time"], p = c["predicted"]["step_time"];
  // --repeat 3: the measured step time is the median of the three runs' (after one warm-up run).
  ASSERT_EQ(c["measured"]["step_times"].size(), 3u);
  std::vector<double> times = c["measured"]["step_times"];
  std::sort(times.begin(), times.end());
  EXPECT_DOUBLE_EQ(m, times[1]);
  EXPECT_EQ(c["repeat"], 3);
  EXPECT_EQ(c["warmup_runs"], 1);
  EXPECT_THAT(out, HasSubstr("measured: median step time of 3 runs ("));
  EXPECT_THAT(out, HasSubstr("after 1 warm-up run not counted"));
  ASSERT_GT(m, 0);
  ASSERT_GT(p, 0);
  // The printed step-time error is (predicted - measured) / measured, to the printed 0.1%.
  std::smatch sm;
  ASSERT_TRUE(std::regex_search(out, sm, std::regex(R"(step time \(s\)\s+\S+\s+\S+\s+([+-][0-9.]+)%)"))) << out;
  EXPECT_NEAR(std::stod(sm[1]), 100 * (p - m) / m, 0.051);
  // Per device: busy + idle = makespan on both sides; the largest error source is named.
  for (const auto& d : c["devices"]) {
    EXPECT_NEAR(d["measured_busy"].get<double>() + d["measured_idle"].get<double>(), c["measured"]["makespan"].get<double>(), 1e-9);
    EXPECT_NEAR(d["predicted_busy"].get<double>() + d["predicted_idle"].get<double>(), c["predicted"]["makespan"].get<double>(), 1e-9);
  }
  ASSERT_FALSE(c["error_sources"].empty());
  const auto& top = c["error_sources"][0];
  for (const auto& e : c["error_sources"])
    EXPECT_LE(std::fabs(e["predicted"].get<double>() - e["measured"].get<double>()),
              std::fabs(top["predicted"].get<double>() - top["measured"].get<double>()));
  EXPECT_NE(out.find(fmt::format("largest source of error: {} on device {}", top["kind"].get<std::string>(),
                                 top["device"].get<int>())),
            std::string::npos)
      << out;
  // Measured peak memory is the executor's allocator peak (everything it allocated); the
  // prediction, from the calibration's fitted pieces, must be within 5% of it on every device.
  for (const auto& d : c["devices"])
    EXPECT_NEAR(d["predicted_peak_bytes"].get<double>(), d["measured_peak_bytes"].get<double>(),
                0.05 * d["measured_peak_bytes"].get<double>());
  EXPECT_GT(c["peak_rss_bytes"].get<double>(), 0);
  for (const auto& s : c["stage_drift"]) {
    EXPECT_EQ(s["measured_max"], s["predicted_max"]);
    EXPECT_DOUBLE_EQ(s["measured_mean"].get<double>(), s["predicted_mean"].get<double>());
  }
  EXPECT_THAT(slurp(dir + "/c.svg"), HasSubstr("<svg"));
  nlohmann::json tr = nlohmann::json::parse(slurp(dir + "/c.trace.json"));
  bool measured = false, predicted = false;
  for (const auto& e : tr["traceEvents"])
    if (e.value("name", "") == "process_name") {
      std::string n = e["args"]["name"];
      measured |= n.rfind("measured", 0) == 0;
      predicted |= n.rfind("predicted", 0) == 0;
    }
  EXPECT_TRUE(measured && predicted);
}

TEST(CompareCli, BadInputsAreClearErrors) {
  std::string out;
  EXPECT_EQ(run("compare --device tpu " + kModel, &out), 2);
  EXPECT_THAT(out, HasSubstr("--device must be cpu or cuda"));
  const std::string bad = ::testing::TempDir() + "/bad.json";
  std::ofstream(bad) << "{\"format\": \"paci-calibration\", \"version\": 7}";
  EXPECT_EQ(run(fmt::format("compare {} --calibration {}", kModel, bad), &out), 2);
  EXPECT_THAT(out, HasSubstr("calibration version 7 is not supported"));
  // The measurement flags: one line naming the flag and what is allowed, exit code 2.
  const std::pair<std::string, std::string> cases[] = {
      {"compare --repeat 0", "--repeat must be an integer in 1..100 (measured runs of the schedule; got 0)"},
      {"compare --repeat 101", "--repeat must be an integer in 1..100"},
      {"compare --warmup-runs -1", "--warmup-runs must be an integer in 0..100"},
      {"calibrate --repeat 0", "--repeat must be an integer in 1..100 (runs of each calibration layout; got 0)"},
      {"calibrate --warmup-steps 101", "--warmup-steps must be an integer in 0..100"},
      {"calibrate --gemm-widths 0", "--gemm-widths must be \"default\", \"none\" or a comma-separated list of 1..32 "
                                    "integers in 1..65536 (got \"0\")"},
      {"calibrate --gemm-widths 64,x", "--gemm-widths must be \"default\", \"none\" or a comma-separated list"},
      {"calibrate --gemm-tokens 64,,128", "--gemm-tokens must be \"default\", \"none\" or a comma-separated list"},
      {"calibrate --gemm-widths none", "--gemm-widths and --gemm-tokens: give both lists or \"none\" for both"},
  };
  for (const auto& [args, message] : cases) {
    const std::string where = args.rfind("calibrate", 0) == 0 ? " --out " + ::testing::TempDir() + "/x.json" : "";
    EXPECT_EQ(run(fmt::format("{} {}{}", args, kModel, where), &out), 2) << args;
    EXPECT_THAT(out, HasSubstr(message)) << args;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << args << ": " << out;
  }
}

}  // namespace
