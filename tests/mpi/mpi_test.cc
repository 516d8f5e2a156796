// One process per pipeline rank under mpirun: the same bits as the threaded run, versions
// as the IR predicts, a rank that stops answering ends the job with a clear error within the
// stall timeout, and resuming from the last checkpoint reproduces the uninterrupted run.
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

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

// Runs a shell command line; `out` holds stdout and stderr.
Outcome sh(const std::string& cmd) { return paci::testing::run_shell_merged(cmd); }

// A small model on synthetic data: a run takes well under a second.
std::string train_args(const std::string& schedule, int P, const std::string& dir, const std::string& extra = "") {
  return fmt::format("train --schedule {} --stages {} --microbatches 4 --steps 8 --data synthetic "
                     "--vocab 256 --layers 4 --seq 16 --batch 2 --seed 3 --save {} {}",
                     schedule, P, dir, extra);
}

std::string mpirun(int np) { return paci::testing::mpirun_paci(np); }

std::string tmp(const std::string& name) { return paci::testing::fresh_path(name); }

void expect_same_checkpoint(const std::string& a, const std::string& b, int stages, const std::string& what) {
  for (int s = 0; s < stages; ++s) {
    // The final checkpoint of train_args' 8 steps.
    std::string fa = slurp(fmt::format("{}/step-000008/stage-{}.bin", a, s));
    std::string fb = slurp(fmt::format("{}/step-000008/stage-{}.bin", b, s));
    ASSERT_FALSE(fa.empty()) << what << ": stage " << s << " missing in " << a;
    EXPECT_TRUE(fa == fb) << what << ": stage " << s << " weights or optimizer state differ";
  }
}

// The "loss" fields of a metrics file, as written (text compare = bitwise for the printed digits).
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

TEST(Mpi, RanksGiveTheThreadedRunsBits) {
  for (const char* schedule : {"1f1b", "paci"})
    for (int P : {2, 4}) {
      const std::string what = fmt::format("{} P={}", schedule, P);
      std::string thr = tmp("thr"), mpi = tmp("mpi");
      Outcome a = sh(fmt::format("{} {}", paci(), train_args(schedule, P, thr, "--metrics " + thr + ".jsonl")));
      ASSERT_EQ(a.code, 0) << what << a.out;
      Outcome b = sh(fmt::format("{} {}", mpirun(P),
                             train_args(schedule, P, mpi, fmt::format("--metrics {}.jsonl --trace {}.trace.json", mpi, mpi))));
      ASSERT_EQ(b.code, 0) << what << b.out;
      EXPECT_THAT(b.out, HasSubstr(fmt::format("({} MPI ranks)", P)));
      expect_same_checkpoint(thr, mpi, P, what);
      EXPECT_EQ(losses(thr + ".jsonl"), losses(mpi + ".jsonl")) << what;
      EXPECT_EQ(losses(mpi + ".jsonl").size(), 8u) << what;
      // The merged trace holds every rank's actions with the versions the IR predicts.
      Trace t = read_chrome_trace(mpi + ".trace.json");
      Schedule s = make_schedule(schedule, {P, 4, 8});
      Analysis an = analyze(s);
      ASSERT_EQ(t.actions.size(), s.num_actions()) << what;
      for (const TraceAction& ta : t.actions) {
        if (ta.action.kind == ActionKind::F)
          ASSERT_EQ(ta.version, an.mb[ta.action.stage][ta.action.mb].v_fwd) << what;
        if (ta.action.kind == ActionKind::B)
          ASSERT_EQ(ta.version, an.mb[ta.action.stage][ta.action.mb].v_bwd) << what;
      }
    }
}

TEST(Mpi, RankThatStopsAnsweringEndsTheJobAndResumeContinues) {
  // Uninterrupted reference with checkpoints every 2 steps (each a pipeline segment).
  std::string ref = tmp("ref"), run = tmp("run");
  ASSERT_EQ(sh(fmt::format("{} {}", paci(), train_args("paci", 2, ref, "--save-every 2"))).code, 0);
  // Rank 0 stops answering after update 5: rank 1 waits on it, gives up after the 2 s stall
  // timeout with an error naming the device (= rank) and the action, and takes the job down.
  Outcome hung = sh(fmt::format("{} {}", mpirun(2),
                            train_args("paci", 2, run, "--save-every 2 --stall-timeout 2 --inject-hang 0 "
                                                       "--inject-hang-after 5")));
  EXPECT_NE(hung.code, 0) << hung.out;
  EXPECT_THAT(hung.out, HasSubstr("stuck: device 1"));
  EXPECT_THAT(hung.out, HasSubstr("on device 0: that device stopped answering"));
  // Detection within the stall timeout plus start-up and teardown.
  EXPECT_LT(hung.seconds, 30) << hung.out;
  EXPECT_THAT(slurp(run + "/step-000004/checkpoint.json"), HasSubstr("\"step\": 4"));
  Outcome resumed = sh(fmt::format("{} {}", mpirun(2), train_args("paci", 2, run, "--save-every 2 --resume " + run)));
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_THAT(resumed.out, HasSubstr("resumed from"));
  expect_same_checkpoint(ref, run, 2, "resumed vs uninterrupted");
}

TEST(Mpi, RankThatHangsAtACheckpointEndsTheJobNamingIt) {
  // Rank `hung` stops answering when it should write its stages of the step-4 checkpoint:
  // the other rank waits at the checkpoint's barrier, gives up after the stall timeout with
  // an error naming itself, the rank it waited for and the checkpoint, and the job ends.
  std::string ref = tmp("ckref");
  ASSERT_EQ(sh(fmt::format("{} {}", paci(), train_args("paci", 2, ref, "--save-every 2"))).code, 0);
  for (int hung : {0, 1}) {
    const int waiter = 1 - hung;
    std::string run = tmp(fmt::format("ckhang{}", hung));
    Outcome r = sh(fmt::format("{} {}", mpirun(2),
                               train_args("paci", 2, run, fmt::format("--save-every 2 --stall-timeout 2 --inject-hang {} "
                                                                      "--inject-hang-at checkpoint --inject-hang-after 4",
                                                                      hung))));
    EXPECT_NE(r.code, 0) << r.out;
    EXPECT_THAT(r.out, HasSubstr(fmt::format("stuck: rank {} waited 2.0 s at the checkpoint of step 4", waiter)))
        << r.out;
    EXPECT_THAT(r.out, HasSubstr(fmt::format("for rank {} (", hung))) << r.out;
    EXPECT_LT(r.seconds, 30) << r.out;
    // The step-2 checkpoint is intact and a resume reproduces the uninterrupted run.
    Outcome resumed = sh(fmt::format("{} {}", mpirun(2), train_args("paci", 2, run, "--save-every 2 --resume " + run)));
    ASSERT_EQ(resumed.code, 0) << resumed.out;
    EXPECT_THAT(resumed.out, HasSubstr("at step 2"));
    expect_same_checkpoint(ref, run, 2, fmt::format("resumed after rank {} hung", hung));
  }
}

TEST(Mpi, ExportLlmcGivesTheThreadedRunsFile) {
  std::string thr = tmp("exp-thr"), mpi = tmp("exp-mpi");
  Outcome a = sh(fmt::format("{} {}", paci(), train_args("1f1b", 2, thr, "--tied --export-llmc " + thr + ".bin")));
  ASSERT_EQ(a.code, 0) << a.out;
  Outcome b = sh(fmt::format("{} {}", mpirun(2), train_args("1f1b", 2, mpi, "--tied --export-llmc " + mpi + ".bin")));
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_THAT(b.out, HasSubstr("wrote llm.c weights"));
  std::string fa = slurp(thr + ".bin"), fb = slurp(mpi + ".bin");
  ASSERT_FALSE(fa.empty());
  EXPECT_TRUE(fa == fb) << "the llm.c export under MPI differs from the threaded run's";
}

TEST(Mpi, BadOutputIsRefusedBeforeTheJobStarts) {
  Outcome r = sh(fmt::format("{} {}", mpirun(2), train_args("1f1b", 2, "/proc/x")));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("--save /proc/x: cannot write"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("step ")));
}

TEST(Mpi, KilledRankEndsTheJob) {
  // A rank killed outright: mpirun takes the job down; nobody hangs.
  std::string run = tmp("killed");
  Outcome r = sh(fmt::format("{} sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then kill -9 $$; fi; exec {} {}'",
                         fmt::format("timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2"), paci(),
                         train_args("1f1b", 2, run, "--stall-timeout 5")));
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_LT(r.seconds, 60);
}

TEST(Mpi, WrongRankCountIsAClearError) {
  Outcome r = sh(fmt::format("{} {}", mpirun(3), train_args("1f1b", 2, tmp("x"))));
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("3 ranks were launched but --schedule 1f1b with --stages 2 has 2 devices"));
}

}  // namespace
}  // namespace paci
