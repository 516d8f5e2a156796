// Prepares the SOTU token shards, e.g. in CI before the data tests:
//   bazel run //exec/data:prepare_main -- --cache /path/to/cache
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "exec/data/prepare.h"

int main(int argc, char** argv) {
  std::string cache_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--cache" && i + 1 < argc) {
      cache_dir = argv[++i];
    } else if (arg.rfind("--cache=", 0) == 0) {
      cache_dir = arg.substr(std::strlen("--cache="));
    } else if (arg == "-h" || arg == "--help") {
      std::cout << "usage: prepare_main [--cache DIR]\n"
                   "Downloads the GPT-2 vocabulary and the State of the Union corpus with npm and\n"
                   "writes DIR/sotu/sotu_train.bin and sotu_val.bin (llm.c token shards).\n"
                   "DIR defaults to $PACI_CACHE, else ~/.cache/paci.\n";
      return 0;
    } else {
      std::cerr << "prepare_main: unknown argument `" << arg << "`; allowed: --cache DIR, --help\n";
      return 2;
    }
  }
  // `bazel run` starts us in the runfiles tree; resolve a relative --cache against the directory
  // the user ran bazel from, as they would expect.
  const char* user_dir = std::getenv("BUILD_WORKING_DIRECTORY");
  if (!cache_dir.empty() && cache_dir[0] != '/' && user_dir != nullptr && *user_dir != '\0') {
    cache_dir = std::string(user_dir) + "/" + cache_dir;
  }
  return paci::run_data_prepare(cache_dir, std::cout);
}
