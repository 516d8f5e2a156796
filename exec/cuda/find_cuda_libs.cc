// find_cuda_libs: prints where the CUDA libraries the backend needs live on this machine.
//   find_cuda_libs            → one "name<TAB>dir-or-MISSING" line each; exit 1 if any is missing
//   find_cuda_libs --ld-path  → the LD_LIBRARY_PATH to export (found dirs + the current value)
// Extra directories to search may follow as arguments.
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "exec/cuda/lib_locate.h"

int main(int argc, char** argv) {
  using namespace paci::cuda;
  bool ld_path = false;
  std::vector<std::string> extra;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--ld-path") == 0) {
      ld_path = true;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::cout << "usage: find_cuda_libs [--ld-path] [extra dirs...]\n";
      return 0;
    } else {
      extra.push_back(argv[i]);
    }
  }
  const char* env = std::getenv("LD_LIBRARY_PATH");
  const std::string old = env ? env : "";
  const auto dirs = candidate_dirs(old, extra, default_site_packages(dir_exists));
  const auto found = locate_libraries(required_cuda_libraries(), dirs, file_exists);
  bool all = true;
  for (const auto& l : found) all = all && l.found();
  if (ld_path) {
    std::cout << ld_library_path_for(found, old) << "\n";
  } else {
    for (const auto& l : found) std::cout << l.name << "\t" << (l.found() ? l.dir : "MISSING") << "\n";
  }
  return all ? 0 : 1;
}
