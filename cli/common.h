// Shared plumbing of the `paci` subcommands.
#pragma once

#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

namespace paci {
class MpiSession;
}

namespace paci::cli {

// A bad flag or input the user can fix: main prints "error: <what>" on one line and exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A failure while doing the work (I/O, a stuck run): "error: <what>", exit 1.
class RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `bazel run` starts programs in their runfiles tree; resolve user paths against the
// directory the user ran the command from.
std::string user_path(const std::string& path);

// The MPI session when a launcher (mpirun, srun) started this process; nullptr otherwise.
MpiSession* mpi_session();

// The user interrupted a run that saved its state: main exits 130.
class Interrupted : public std::exception {};

// Subcommands. Each adds itself to the app; its callback throws UsageError / RunError.
void add_schedules_command(CLI::App& app);
void add_show_command(CLI::App& app);
void add_sim_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_calibrate_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_plan_command(CLI::App& app);

}  // namespace paci::cli
