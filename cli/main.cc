// paci: choose, predict and run pipeline-parallel training schedules.
#include <cstdlib>
#include <memory>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/common.h"
#include "exec/mpi/mpi.h"
#include "schedules/formats.h"
#include "schedules/graph.h"
#include "schedules/registry.h"

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
  } catch (const cli::UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const ParamError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const FormatError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const ScheduleError& e) {
    std::cerr << "error: " << e.what() << "\n" << e.context();
    return 2;
  } catch (const cli::Interrupted&) {
    return 130;
  } catch (const cli::RunError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
