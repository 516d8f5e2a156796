// Running `paci` on bad input as a user would, with the promises of item 4 of issue 12 checked:
// exit 2, one line on stderr naming the input, bounded time (run under `timeout`) and memory
// (under `ulimit -v`), and no output file left behind.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cli_runner.h"

namespace paci::testing {

inline constexpr int kBadInputSeconds = 20;       // the child is killed after this
inline constexpr long kBadInputMemoryKiB = 2L << 20;  // 2 GiB of address space (ulimit -v)

// Runs `paci args` under the limits. Outputs: paths that must not exist afterwards (nor any
// "<path>.tmp-*" sibling a failed atomic write could leave).
inline CliResult expect_refused(const std::string& args, const std::string& mention,
                                const std::vector<std::string>& outputs = {}) {
  CliResult r = run_shell(fmt::format("ulimit -v {}; exec timeout -s KILL {} {} {}", kBadInputMemoryKiB,
                                      kBadInputSeconds, paci_binary(), args));
  EXPECT_EQ(r.code, 2) << "paci " << args << "\nstderr: " << r.err.substr(0, 2000);
  EXPECT_EQ(count_lines(r.err), 1) << "paci " << args << ": one line\n" << r.err.substr(0, 2000);
  EXPECT_THAT(r.err, ::testing::StartsWith("error: ")) << args;
  EXPECT_THAT(r.err, ::testing::HasSubstr(mention)) << "paci " << args;
  EXPECT_LT(r.err.size(), 1200u) << "paci " << args << ": the message echoes too much";
  EXPECT_LT(r.seconds, kBadInputSeconds) << args;
  namespace fs = std::filesystem;
  for (const std::string& o : outputs) {
    EXPECT_FALSE(fs::exists(o)) << "paci " << args << " left " << o;
    const fs::path p(o);
    std::error_code ec;
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    if (fs::is_directory(dir, ec))
      for (const auto& e : fs::directory_iterator(dir, ec))
        EXPECT_EQ(e.path().filename().string().rfind(p.filename().string() + ".tmp", 0), std::string::npos)
            << "paci " << args << " left " << e.path();
  }
  return r;
}

inline std::string write_text(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  return path;
}

}  // namespace paci::testing
