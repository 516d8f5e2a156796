// Finding the CUDA libraries a carried binary needs on a machine it was not built on
// (cuBLAS/cuBLASLt and NCCL are too large to carry; the lent GPU machine has its own, possibly
// inside Python wheels). Plain C++, tested in tests/cuda/lib_locate_test.cc; used by the
// find_cuda_libs tool that tests/gpu/gpu_check.sh runs to build LD_LIBRARY_PATH.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace paci {
namespace cuda {

// The sonames the CUDA backend's binaries load (cudart is linked statically).
std::vector<std::string> required_cuda_libraries();  // libcublas.so.13, libcublasLt.so.13, libnccl.so.2

// Directories to search, in order, without duplicates: the entries of `ld_library_path`
// (':'-separated, empty entries skipped), then `extra`, then the default locations
// (/usr/local/cuda/lib64, /usr/local/cuda/lib, /usr/local/cuda/targets/x86_64-linux/lib,
// /usr/lib/x86_64-linux-gnu, /usr/lib64, and the pip wheel folders nvidia/cu13/lib,
// nvidia/cublas/lib, nvidia/nccl/lib under each `site_packages` folder).
std::vector<std::string> candidate_dirs(const std::string& ld_library_path,
                                        const std::vector<std::string>& extra,
                                        const std::vector<std::string>& site_packages);

// Site-packages folders to look in: Python 3.8–3.14 under /usr/lib, /usr/local/lib and
// /opt/*/.venv/lib (the lent machine's PyTorch lives in /opt/torch/.venv), filtered by
// `is_dir`.
std::vector<std::string> default_site_packages(
    const std::function<bool(const std::string&)>& is_dir);

struct LibLocation {
  std::string name;
  std::string dir;  // empty if not found
  bool found() const { return !dir.empty(); }
};

// For each name, the first directory of `dirs` where `exists(dir + "/" + name)` holds.
std::vector<LibLocation> locate_libraries(const std::vector<std::string>& names,
                                          const std::vector<std::string>& dirs,
                                          const std::function<bool(const std::string&)>& exists);

// LD_LIBRARY_PATH value: the found dirs (first-found order, no duplicates) followed by the
// old value (if any).
std::string ld_library_path_for(const std::vector<LibLocation>& found, const std::string& old);

// File-system predicates for the real machine.
bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);

}  // namespace cuda
}  // namespace paci
