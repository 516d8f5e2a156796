#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/fuzz/fuzz.h"

namespace paci::fuzz {

void check_message(const char* what) {
  // One line, and short: an error must not echo a whole input (cells are cut at 40 characters,
  // paths at 200). 2000 bytes leaves room for the fixed text of any message.
  const size_t n = std::strlen(what);
  if (std::strchr(what, '\n') != nullptr || n > 2000) {
    std::fprintf(stderr, "paci fuzz: error message is not one short line (%zu bytes): %.300s\n", n, what);
    std::abort();
  }
}

}  // namespace paci::fuzz

namespace paci::cli {
// cli/main.cc's, which the harnesses do not link: no `bazel run` working directory here.
std::string user_path(const std::string& path) { return path; }
}  // namespace paci::cli
