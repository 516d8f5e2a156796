#include "tests/support/cli_runner.h"

#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace paci::testing {

std::string paci_binary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return fmt::format("{}/{}/cli/paci", srcdir ? srcdir : ".", ws ? ws : "paci");
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string fresh_path(const std::string& name) {
  std::string p = ::testing::TempDir() + "/" + name;
  std::filesystem::remove_all(p);
  return p;
}

CliResult run_paci(const std::string& args, const std::string& prefix) {
  return run_shell(fmt::format("{} {} {}", prefix, paci_binary(), args));
}

CliResult run_shell_merged(const std::string& cmdline) {
  CliResult r = run_shell(cmdline);
  r.out += r.err;
  return r;
}

std::string mpirun_paci(int np) {
  return fmt::format("timeout 120 mpirun --allow-run-as-root --oversubscribe -np {} {}", np, paci_binary());
}

CliResult run_shell(const std::string& cmdline) {
  const std::string out = ::testing::TempDir() + "/paci.out", err = ::testing::TempDir() + "/paci.err";
  auto t0 = std::chrono::steady_clock::now();
  int status = std::system(fmt::format("{} >{} 2>{}", cmdline, out, err).c_str());
  CliResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace paci::testing
