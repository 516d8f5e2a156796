// The BLAS kernel choice: OpenBLAS's generic fallback on a CPU it does not know is replaced by
// the best kernel the CPU's features allow, and a value the user set is never overridden.
#include "exec/model/blas_kernel.h"

#include <gtest/gtest.h>

#include "tests/support/cli_runner.h"

namespace paci {
namespace {

CpuFeatures features(int tier, bool amd = false) {
  CpuFeatures f;
  f.avx = tier >= 1, f.avx2_fma = tier >= 2, f.avx512 = tier >= 3, f.amd = amd;
  return f;
}

TEST(BlasKernel, Tiers) {
  EXPECT_EQ(0, kernel_tier("Prescott"));
  EXPECT_EQ(0, kernel_tier("Nehalem"));
  EXPECT_EQ(0, kernel_tier("no such kernel"));
  EXPECT_EQ(1, kernel_tier("Sandybridge"));
  EXPECT_EQ(2, kernel_tier("Haswell"));
  EXPECT_EQ(2, kernel_tier("ZEN"));  // OpenBLAS accepts any case
  EXPECT_EQ(3, kernel_tier("SkylakeX"));
  EXPECT_EQ(3, kernel_tier("Cooperlake"));
}

TEST(BlasKernel, FallbackIsReplacedByTheBestTheCpuSupports) {
  // The case of issue 12: a 5th generation Xeon (AVX-512) given Prescott.
  EXPECT_EQ("SkylakeX", better_blas_kernel("Prescott", features(3)));
  EXPECT_EQ("Haswell", better_blas_kernel("Prescott", features(2)));
  EXPECT_EQ("Zen", better_blas_kernel("Prescott", features(2, /*amd=*/true)));
  EXPECT_EQ("Sandybridge", better_blas_kernel("Core2", features(1)));
  EXPECT_EQ("SkylakeX", better_blas_kernel("Haswell", features(3)));
}

TEST(BlasKernel, VendorNamesTheMaker) {
  CpuFeatures f;
  EXPECT_STREQ("other vendor", cpu_vendor(f));
  f.amd = true;
  EXPECT_STREQ("AMD", cpu_vendor(f));
  f.amd = false, f.intel = true;
  EXPECT_STREQ("Intel", cpu_vendor(f));
}

TEST(BlasKernel, AGoodChoiceIsKept) {
  EXPECT_EQ("", better_blas_kernel("SkylakeX", features(3)));
  EXPECT_EQ("", better_blas_kernel("Zen", features(2, true)));
  EXPECT_EQ("", better_blas_kernel("Haswell", features(2)));
  EXPECT_EQ("", better_blas_kernel("Prescott", features(0)));
  // Never a kernel the CPU cannot run.
  EXPECT_EQ("", better_blas_kernel("Sandybridge", features(1)));
}

TEST(BlasKernel, ThePaciBinaryReExecutesWithTheBetterKernel) {
  using testing::run_shell;
  const std::string paci = testing::paci_binary();
  const CpuFeatures f = cpu_features();
  const std::string best = better_blas_kernel("Prescott", f);
  if (best.empty()) GTEST_SKIP() << "this CPU has no kernel above the generic one";
  // OpenBLAS "chose" Prescott (simulated): paci re-executes with OPENBLAS_CORETYPE=best.
  auto r = run_shell("env -u OPENBLAS_CORETYPE PACI_BLAS_ASSUME_CHOSEN=Prescott " + paci + " info");
  ASSERT_EQ(0, r.code) << r.err;
  EXPECT_NE(std::string::npos, r.out.find("kernel " + best + " (OpenBLAS chose Prescott; paci set"))
      << r.out;
  // The user's OPENBLAS_CORETYPE is never overridden.
  r = run_shell("OPENBLAS_CORETYPE=Prescott PACI_BLAS_ASSUME_CHOSEN=Prescott " + paci + " info");
  ASSERT_EQ(0, r.code) << r.err;
  EXPECT_NE(std::string::npos, r.out.find("kernel Prescott (from OPENBLAS_CORETYPE)")) << r.out;
}

}  // namespace
}  // namespace paci
