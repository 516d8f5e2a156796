// The new schedules (V placements, overlapped F&B, interleaved zero bubble, looped BFS,
// paci-v) under mpirun -np 2, one process per pipeline device: the same bits as the threaded
// run; the synchronous ones the losses of one stage; paci-v the versions of its IR.
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schedules/analysis.h"
#include "schedules/registry.h"
#include "schedules/trace/chrome.h"
#include "tests/support/cli_runner.h"

namespace paci {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using paci::testing::slurp;
using Outcome = paci::testing::CliResult;

std::string paci() { return paci::testing::paci_binary(); }

Outcome sh(const std::string& cmd) { return paci::testing::run_shell_merged(cmd); }

// A small model on synthetic data, 8 steps of 4 micro-batches: well under a second a run.
std::string train_args(const std::string& schedule, int P, const std::string& dir, const std::string& extra) {
  return fmt::format("train --schedule {} --stages {} --microbatches 4 --steps 8 --data synthetic "
                     "--vocab 256 --layers 4 --seq 16 --batch 2 --seed 3 --save {} --metrics {}.jsonl {}",
                     schedule, P, dir, dir, extra);
}

std::string tmp(const std::string& name) { return paci::testing::fresh_path(name); }

// The "loss" fields of a metrics file as written (all digits of the double: a text compare
// is a bitwise compare).
std::vector<std::string> losses(const std::string& metrics) {
  std::vector<std::string> out;
  std::istringstream in(slurp(metrics));
  std::string line;
  while (std::getline(in, line)) {
    auto at = line.find("\"loss\":");
    if (at != std::string::npos) out.push_back(line.substr(at, line.find(',', at) - at));
  }
  return out;
}

struct Case {
  const char* name;
  const char* extra;
  int stages;
};

const Case kCases[] = {
    {"zb-v", "", 4},       {"v-half", "", 4},     {"v-min", "", 4},
    {"dualpipev", "", 4},  {"interleaved-zb", "--virtual 2", 4}, {"looped-bfs", "--virtual 2", 4},
    {"paci-v", "--accum 2", 4},
};

TEST(NewSchedulesMpi, TwoRanksGiveTheThreadedBitsAndSynchronousOnesOneStagesLosses) {
  const std::string one = tmp("one");
  ASSERT_EQ(sh(fmt::format("{} {}", paci(), train_args("1f1b", 1, one, ""))).code, 0);
  const std::vector<std::string> one_stage = losses(one + ".jsonl");
  ASSERT_EQ(one_stage.size(), 8u);
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    const std::string thr = tmp(std::string("thr-") + c.name), mpi = tmp(std::string("mpi-") + c.name);
    Outcome a = sh(fmt::format("{} {}", paci(), train_args(c.name, 2, thr, c.extra)));
    ASSERT_EQ(a.code, 0) << a.out;
    Outcome b = sh(fmt::format("{} {}", paci::testing::mpirun_paci(2),
                               train_args(c.name, 2, mpi, fmt::format("{} --trace {}.trace.json", c.extra, mpi))));
    ASSERT_EQ(b.code, 0) << b.out;
    EXPECT_THAT(b.out, HasSubstr("(2 MPI ranks)"));
    // The final checkpoint: step 8, or update 16 for paci-v's two updates per 4 micro-batches.
    const std::string last = std::string(c.name) == "paci-v" ? "step-000016" : "step-000008";
    for (int s = 0; s < c.stages; ++s) {
      const std::string fa = slurp(fmt::format("{}/{}/stage-{}.bin", thr, last, s));
      ASSERT_FALSE(fa.empty()) << "stage " << s;
      EXPECT_TRUE(fa == slurp(fmt::format("{}/{}/stage-{}.bin", mpi, last, s))) << "stage " << s;
    }
    EXPECT_EQ(losses(thr + ".jsonl"), losses(mpi + ".jsonl"));
    if (std::string(c.name) != "paci-v") {
      EXPECT_EQ(losses(mpi + ".jsonl"), one_stage);
      continue;
    }
    // paci-v: the merged trace holds every rank's actions with the versions of the IR.
    Trace t = read_chrome_trace(mpi + ".trace.json");
    Schedule s = make_schedule("paci-v", {2, 4, 8, std::nullopt, 2});
    Analysis an = analyze(s);
    ASSERT_EQ(t.actions.size(), s.num_actions());
    for (const TraceAction& ta : t.actions) {
      if (ta.action.kind == ActionKind::F)
        ASSERT_EQ(ta.version, an.mb[ta.action.stage][ta.action.mb].v_fwd);
      if (ta.action.kind == ActionKind::B)
        ASSERT_EQ(ta.version, an.mb[ta.action.stage][ta.action.mb].v_bwd);
    }
  }
}

}  // namespace
}  // namespace paci
