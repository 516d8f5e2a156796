// Running the `paci` binary from a test: where it is in the runfiles, its exit code and
// output, and the small file helpers such tests need.
#pragma once

#include <string>

namespace paci::testing {

// The //cli:paci binary of the test's runfiles (the test lists it in `data`).
std::string paci_binary();

std::string slurp(const std::string& path);

// A fresh (removed) path under the test's temporary directory.
std::string fresh_path(const std::string& name);

struct CliResult {
  int code = -1;     // exit status, -1 if killed by a signal
  std::string out;   // stdout
  std::string err;   // stderr
  double seconds = 0;
};

// Runs a shell command line.
CliResult run_shell(const std::string& cmdline);
// Runs a shell command line; `out` holds its stdout followed by its stderr.
CliResult run_shell_merged(const std::string& cmdline);
// "timeout 120 mpirun --allow-run-as-root --oversubscribe -np N <paci>": the start of a command
// line running paci as N ranks on this machine.
std::string mpirun_paci(int np);
// Runs `prefix paci args` through the shell (prefix: e.g. "mpirun -np 2").
CliResult run_paci(const std::string& args, const std::string& prefix = "");

int count_lines(const std::string& s);

}  // namespace paci::testing
