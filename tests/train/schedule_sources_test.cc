// `paci train` runs a schedule from any source the simulator runs: every generator, zb-1p and
// zb-2p (built from the analytic model of the trained model, or from a calibration), a CSV
// exported by `paci show`,
// and the order `paci sim --dynamic` realised (JSON). The synchronous ones give bitwise the
// losses of one stage; the asynchronous ones record exactly the weight versions the IR's
// analysis predicts.
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "schedules/analysis.h"
#include "schedules/formats.h"
#include "tests/support/cli_runner.h"

namespace {

using paci::testing::fresh_path;
using paci::testing::run_paci;
using paci::testing::slurp;

// Tiny model, synthetic data, 4 micro-batches per step, 3 steps.
const std::string kRun = "--data synthetic --vocab 256 --layers 4 --seq 16 --batch 2 --microbatches 4";

struct Metrics {
  std::vector<double> loss;
  double val = NAN;
  nlohmann::json stages;  // the summary's per-stage drift
};

Metrics train(const std::string& args) {
  const std::string m = fresh_path("m.jsonl");
  auto r = run_paci(fmt::format("train {} {} --metrics {}", args, kRun, m));
  EXPECT_EQ(0, r.code) << args << "\n" << r.err << r.out;
  Metrics out;
  std::string text = slurp(m);
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    auto j = nlohmann::json::parse(text.substr(at, nl - at));
    at = nl == std::string::npos ? text.size() : nl + 1;
    if (j.contains("loss")) out.loss.push_back(j["loss"]);
    if (j.contains("val_loss")) out.val = j["val_loss"];
    if (j.contains("summary")) out.stages = j["summary"]["stages"];
  }
  return out;
}

TEST(ScheduleSources, SynchronousSchedulesFromEverySourceEqualOneStage) {
  const Metrics one = train("--schedule 1f1b --stages 1 --steps 3");
  ASSERT_EQ(3u, one.loss.size());
  const std::string csv = fresh_path("1f1b.csv"), zbcsv = fresh_path("zb-h1.csv"), cal = fresh_path("cal.json");
  // A calibration of the same model, for zb-2p built from calibrated costs.
  ASSERT_EQ(0, run_paci(fmt::format("calibrate --vocab 256 --layers 4 --seq 16 --batch 2 --out {}", cal)).code);
  ASSERT_EQ(0, run_paci(fmt::format("show --schedule 1f1b -P 2 -M 4 --export {}", csv)).code);
  ASSERT_EQ(0, run_paci(fmt::format("show --schedule zb-h1 -P 3 -M 4 --export {}", zbcsv)).code);
  const std::string cases[] = {
      "--schedule gpipe --stages 2 --steps 3",
      "--schedule 1f1b --stages 3 --steps 3",
      "--schedule interleaved-1f1b --stages 2 --virtual 2 --steps 3",
      "--schedule zb-h1 --stages 2 --steps 3",
      "--schedule zb-1p --stages 2 --steps 3",
      "--schedule zb-2p --stages 3 --steps 3",
      "--schedule zb-2p --stages 3 --steps 3 --calibration " + cal,
      "--file " + csv + " --steps 3",      // one step in the file, run 3 times
      "--file " + zbcsv + " --steps 3",
  };
  for (const std::string& c : cases) {
    const Metrics m = train(c);
    ASSERT_EQ(one.loss.size(), m.loss.size()) << c;
    for (size_t k = 0; k < m.loss.size(); ++k) EXPECT_EQ(one.loss[k], m.loss[k]) << c << ", step " << k + 1;
    EXPECT_EQ(one.val, m.val) << c;  // the final weights, through the validation loss
  }
}

// The asynchronous ones: the recorded drift per stage (max and mean) is the analysis's.
void expect_recorded_versions_equal_the_ir(const std::string& args, const paci::Schedule& s) {
  const paci::Analysis a = paci::analyze(s);
  const Metrics m = train(args);
  ASSERT_EQ(static_cast<size_t>(s.stages()), m.stages.size()) << args;
  for (int st = 0; st < s.stages(); ++st) {
    EXPECT_EQ(a.stages[st].max_drift, m.stages[st]["max_drift"].get<int>()) << args << ", stage " << st;
    EXPECT_DOUBLE_EQ(a.stages[st].mean_drift, m.stages[st]["mean_drift"].get<double>()) << args << ", stage " << st;
  }
}

TEST(ScheduleSources, TheDynamicOrderAndImportedAsyncSchedulesRecordTheIrsVersions) {
  // The order the dynamic PACI policy realised in simulation, exported and trained.
  const std::string realised = fresh_path("realised.json");
  auto r = run_paci(fmt::format("sim --schedule paci --dynamic -P 3 -M 4 -N 3 -a 2 --export {}", realised));
  ASSERT_EQ(0, r.code) << r.err;
  expect_recorded_versions_equal_the_ir("--file " + realised, paci::load_schedule(realised));
  // PACI and PipeDream through a JSON file.
  for (const char* g : {"paci -a 2", "pipedream"}) {
    const std::string f = fresh_path("async.json");
    ASSERT_EQ(0, run_paci(fmt::format("show --schedule {} -P 3 -M 4 -N 3 --export {}", g, f)).code) << g;
    expect_recorded_versions_equal_the_ir("--file " + f, paci::load_schedule(f));
  }
}

TEST(ScheduleSources, AFileWhoseStepsDoNotDivideTheRunIsRefused) {
  const std::string f = fresh_path("two.json");
  ASSERT_EQ(0, run_paci(fmt::format("show --schedule paci -P 2 -M 4 -N 2 --export {}", f)).code);
  auto r = run_paci(fmt::format("train --file {} --steps 3 {}", f, kRun));
  EXPECT_EQ(2, r.code);
  EXPECT_NE(std::string::npos, r.err.find("holds 2 steps per run of the file")) << r.err;
}

}  // namespace
