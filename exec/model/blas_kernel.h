// Which OpenBLAS kernel runs, and a better one where OpenBLAS fell back to a generic kernel.
//
// Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernel when the library loads, from the
// CPU's family and model. A CPU newer than the library (a 5th generation Xeon, family 6
// model 207) is not in its table and gets the generic Prescott (SSE3) kernel: 4x slower
// sgemm than the AVX-512 SkylakeX kernel on the same CPU. OpenBLAS reads OPENBLAS_CORETYPE
// only at load time, so paci's entry points call use_best_blas_kernel() first: when no
// OPENBLAS_CORETYPE is set and the CPU's features support a kernel of a higher tier than the
// one chosen, it sets OPENBLAS_CORETYPE and re-executes the program once (before MPI starts
// or anything is read). A value the environment already sets is never overridden.
//
// Results do not depend on this choice for paci's guarantees (see cpu_kernels.h: every
// guarantee compares runs under one kernel), but their bits do: runs compared bitwise must use
// the same kernel, which blas_kernel() names for logs and result tables.
#pragma once

#include <string>

namespace paci {

// The kernel OpenBLAS is using, e.g. "Zen", "Haswell", "SkylakeX", "Prescott".
std::string blas_kernel();
// One line for logs and result tables: library version, kernel, how it was chosen.
std::string blas_description();

// Instruction-set tiers: 0 generic (SSE), 1 AVX, 2 AVX2 + FMA, 3 AVX-512 (F, BW, DQ, VL).
struct CpuFeatures {
  bool avx = false, avx2_fma = false, avx512 = false;
  bool amd = false, intel = false;
};
const char* cpu_vendor(const CpuFeatures& cpu);  // "AMD", "Intel" or "other vendor"
// "model name (family F, model M)" of the first CPU in /proc/cpuinfo, for logs and result
// tables: family and model tell apart CPUs that share a name ("Intel(R) Xeon(R) Processor" in VMs).
std::string cpu_model();
CpuFeatures cpu_features();
int kernel_tier(const std::string& kernel);  // of an OpenBLAS kernel name; unknown: 0
// The kernel to switch to, or "" to keep `current`: the best tier the CPU supports when it
// is above `current`'s (SkylakeX; Zen on AMD, else Haswell; Sandybridge).
std::string better_blas_kernel(const std::string& current, const CpuFeatures& cpu);

// Call first in main(): may re-execute the program with OPENBLAS_CORETYPE set (see above).
// Returns normally when nothing is to change, or when re-executing failed.
void use_best_blas_kernel(char** argv);

}  // namespace paci
