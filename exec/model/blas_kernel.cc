#include "exec/model/blas_kernel.h"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <cstring>

extern "C" char* openblas_get_corename(void);
extern "C" char* openblas_get_config(void);

namespace paci {
namespace {
// Set by use_best_blas_kernel() for the re-executed program: "FROM>TO".
constexpr const char* kMarker = "PACI_BLAS_SWITCHED";

bool same(const std::string& a, const char* b) { return strcasecmp(a.c_str(), b) == 0; }
}  // namespace

std::string blas_kernel() {
  const char* c = openblas_get_corename();
  return c ? c : "unknown";
}

std::string blas_description() {
  std::string d = openblas_get_config();
  d += ", kernel " + blas_kernel();
  if (const char* m = std::getenv(kMarker)) {
    const std::string s = m;
    const auto gt = s.find('>');
    d += " (OpenBLAS chose " + s.substr(0, gt) + "; paci set OPENBLAS_CORETYPE)";
  } else if (std::getenv("OPENBLAS_CORETYPE")) {
    d += " (from OPENBLAS_CORETYPE)";
  }
  return d;
}

CpuFeatures cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__)
  __builtin_cpu_init();
  f.avx = __builtin_cpu_supports("avx");
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  f.amd = __builtin_cpu_is("amd");
  f.intel = __builtin_cpu_is("intel");
#endif
  return f;
}

const char* cpu_vendor(const CpuFeatures& cpu) {
  return cpu.amd ? "AMD" : cpu.intel ? "Intel" : "other vendor";
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown", family, model;
  auto value = [&line] {
    const size_t colon = line.find(':');
    return colon == std::string::npos || colon + 2 > line.size() ? std::string() : line.substr(colon + 2);
  };
  while (std::getline(in, line) && !line.empty()) {
    if (line.rfind("model name", 0) == 0) name = value();
    if (line.rfind("cpu family", 0) == 0) family = value();
    if (line.rfind("model\t", 0) == 0) model = value();
  }
  return name + (family.empty() ? "" : " (family " + family + ", model " + model + ")");
}

int kernel_tier(const std::string& k) {
  for (const char* n : {"SkylakeX", "Cooperlake", "SapphireRapids"})
    if (same(k, n)) return 3;
  for (const char* n : {"Haswell", "Zen", "Excavator"})
    if (same(k, n)) return 2;
  for (const char* n : {"Sandybridge", "Bulldozer", "Piledriver", "Steamroller"})
    if (same(k, n)) return 1;
  return 0;
}

std::string better_blas_kernel(const std::string& current, const CpuFeatures& cpu) {
  const int have = kernel_tier(current);
  const int can = cpu.avx512 ? 3 : cpu.avx2_fma ? 2 : cpu.avx ? 1 : 0;
  if (can <= have) return "";
  if (can == 3) return "SkylakeX";
  if (can == 2) return cpu.amd ? "Zen" : "Haswell";
  return "Sandybridge";
}

void use_best_blas_kernel(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv(kMarker)) return;
  // PACI_BLAS_ASSUME_CHOSEN (tests only) stands in for OpenBLAS's choice, so the switch can
  // be exercised on a CPU that OpenBLAS knows.
  const char* assume = std::getenv("PACI_BLAS_ASSUME_CHOSEN");
  const std::string now = assume ? assume : blas_kernel();
  const std::string better = better_blas_kernel(now, cpu_features());
  if (better.empty()) return;
  setenv("OPENBLAS_CORETYPE", better.c_str(), 1);
  setenv(kMarker, (now + ">" + better).c_str(), 1);
  execv("/proc/self/exe", argv);
  // Could not re-execute: carry on with the kernel we have.
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(kMarker);
}

}  // namespace paci
