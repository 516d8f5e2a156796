// paci: choose, predict and run pipeline-parallel training schedules.
#include <cstdlib>
#include <memory>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "exec/model/blas_kernel.h"
#include "exec/data/shard.h"
#include "exec/model/llmc_checkpoint.h"
#include "exec/mpi/mpi.h"
#include "schedules/files.h"
#include "schedules/formats.h"
#include "schedules/graph.h"
#include "schedules/registry.h"
#include "sim/calibrate/calibration.h"
#include "sim/cost.h"

namespace paci::cli {

namespace {
std::unique_ptr<MpiSession> g_mpi;
}

MpiSession* mpi_session() { return g_mpi.get(); }

std::string user_path(const std::string& path) {
  if (path.empty() || path[0] == '/' || path == "-") return path;
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  return wd ? std::string(wd) + "/" + path : path;
}

}  // namespace paci::cli

int run_cli(int argc, char** argv);

int main(int argc, char** argv) {
  using namespace paci;
  // First of all: may re-execute with a better OpenBLAS kernel (see blas_kernel.h).
  use_best_blas_kernel(argv);
  if (launched_by_mpi_launcher()) {
    try {
      cli::g_mpi = std::make_unique<MpiSession>(&argc, &argv);
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    }
  }
  // Under MPI a failing rank takes the whole job down, so no rank waits for a dead peer.
  auto fail = [](int code) {
    if (cli::g_mpi && cli::g_mpi->size() > 1) {
      std::cerr.flush();
      cli::g_mpi->abort(code);
    }
    cli::g_mpi.reset();
    return code;
  };
  int rc = run_cli(argc, argv);
  return rc == 0 || rc == 130 ? (cli::g_mpi.reset(), rc) : fail(rc);
}

namespace {
// paci's error types that name bad input, each a one-line message.
bool is_bad_input(const std::exception& e) {
  using namespace paci;
  return dynamic_cast<const cli::UsageError*>(&e) || dynamic_cast<const ParamError*>(&e) ||
         dynamic_cast<const FormatError*>(&e) || dynamic_cast<const InputError*>(&e) ||
         dynamic_cast<const CostError*>(&e) || dynamic_cast<const CalibrationError*>(&e) ||
         dynamic_cast<const ShardError*>(&e) || dynamic_cast<const LlmcError*>(&e);
}
}  // namespace

int run_cli(int argc, char** argv) {
  using namespace paci;
  CLI::App app{"paci: pipeline-parallel training schedules as data: show them, simulate them, "
               "run them", "paci"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Help for every command");
  cli::add_schedules_command(app);
  cli::add_show_command(app);
  cli::add_sim_command(app);
  cli::add_train_command(app);
  cli::add_data_command(app);
  cli::add_calibrate_command(app);
  cli::add_compare_command(app);
  cli::add_plan_command(app);
  app.add_subcommand("info", "What this machine runs: the BLAS library and kernel, the CPU model, CPU features")
      ->callback([] {
        const CpuFeatures f = cpu_features();
        std::cout << "blas: " << blas_description() << "\n"
                  << "machine: " << cpu_model() << "\n"
                  << "cpu: " << cpu_vendor(f) << ", AVX " << (f.avx ? "yes" : "no")
                  << ", AVX2+FMA " << (f.avx2_fma ? "yes" : "no") << ", AVX-512 "
                  << (f.avx512 ? "yes" : "no") << "\n";
      });
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Errors from subcommand callbacks arrive wrapped; everything else is a flag problem.
    std::string msg = e.what();
    std::cerr << "error: " << msg << " (see paci --help)\n";
    return 2;
  } catch (const ScheduleError& e) {
    std::cerr << "error: " << e.what() << "\n" << e.context();
    return 2;
  } catch (const cli::Interrupted&) {
    return 130;
  } catch (const std::exception& e) {
    // Bad input of any kind (flags, files, shards, checkpoints, unwritable outputs): exit 2;
    // a failure of the run itself (cli::RunError, anything else): exit 1.
    std::cerr << "error: " << e.what() << "\n";
    return is_bad_input(e) ? 2 : 1;
  }
  return 0;
}
