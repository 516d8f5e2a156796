#include "exec/cuda/lib_locate.h"

#include <sys/stat.h>

#include <algorithm>
#include <sstream>

namespace paci {
namespace cuda {

std::vector<std::string> required_cuda_libraries() {
  return {"libcublas.so.13", "libcublasLt.so.13", "libnccl.so.2"};
}

namespace {
void add_unique(std::vector<std::string>& v, std::string d) {
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  if (d.empty()) return;
  if (std::find(v.begin(), v.end(), d) == v.end()) v.push_back(std::move(d));
}
}  // namespace

std::vector<std::string> candidate_dirs(const std::string& ld_library_path,
                                        const std::vector<std::string>& extra,
                                        const std::vector<std::string>& site_packages) {
  std::vector<std::string> dirs;
  std::stringstream ss(ld_library_path);
  std::string item;
  while (std::getline(ss, item, ':')) add_unique(dirs, item);
  for (const std::string& d : extra) add_unique(dirs, d);
  for (const char* d : {"/usr/local/cuda/lib64", "/usr/local/cuda/lib",
                        "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/lib/x86_64-linux-gnu",
                        "/usr/lib64"}) {
    add_unique(dirs, d);
  }
  for (const std::string& sp : site_packages) {
    for (const char* sub : {"nvidia/cu13/lib", "nvidia/cublas/lib", "nvidia/nccl/lib"}) {
      add_unique(dirs, sp + "/" + sub);
    }
  }
  return dirs;
}

std::vector<std::string> default_site_packages(
    const std::function<bool(const std::string&)>& is_dir) {
  std::vector<std::string> roots = {"/usr/local/lib", "/usr/lib"};
  for (const char* venv : {"/opt/torch/.venv/lib", "/opt/venv/lib", "/opt/conda/lib"}) {
    roots.push_back(venv);
  }
  std::vector<std::string> out;
  for (const std::string& r : roots) {
    for (int minor = 14; minor >= 8; --minor) {
      for (const char* kind : {"site-packages", "dist-packages"}) {
        const std::string d = r + "/python3." + std::to_string(minor) + "/" + kind;
        if (is_dir(d)) add_unique(out, d);
      }
    }
  }
  return out;
}

std::vector<LibLocation> locate_libraries(const std::vector<std::string>& names,
                                          const std::vector<std::string>& dirs,
                                          const std::function<bool(const std::string&)>& exists) {
  std::vector<LibLocation> out;
  for (const std::string& n : names) {
    LibLocation loc{n, ""};
    for (const std::string& d : dirs) {
      if (exists(d + "/" + n)) {
        loc.dir = d;
        break;
      }
    }
    out.push_back(loc);
  }
  return out;
}

std::string ld_library_path_for(const std::vector<LibLocation>& found, const std::string& old) {
  std::vector<std::string> dirs;
  for (const LibLocation& l : found) {
    if (l.found()) add_unique(dirs, l.dir);
  }
  std::string s;
  for (const std::string& d : dirs) s += (s.empty() ? "" : ":") + d;
  if (!old.empty()) s += (s.empty() ? "" : ":") + old;
  return s;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace cuda
}  // namespace paci
