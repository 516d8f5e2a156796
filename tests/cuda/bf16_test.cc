#include "exec/cuda/bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace paci {
namespace cuda {
namespace {

TEST(Bf16, ExactValues) {
  EXPECT_EQ(float_to_bf16_bits(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16_bits(-2.0f), 0xc000);
  EXPECT_EQ(float_to_bf16_bits(0.0f), 0x0000);
  EXPECT_EQ(float_to_bf16_bits(-0.0f), 0x8000);
  EXPECT_EQ(bf16_bits_to_float(0x3f80), 1.0f);
  EXPECT_EQ(round_to_bf16(0.5f), 0.5f);
  EXPECT_EQ(round_to_bf16(3.0f), 3.0f);
}

TEST(Bf16, RoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -7);  // bf16 spacing just above 1
  // halfway between 1 and 1+ulp: ties to even (1.0, mantissa ...0)
  EXPECT_EQ(round_to_bf16(1.0f + ulp / 2), 1.0f);
  // halfway between 1+ulp and 1+2ulp: ties to even (1+2ulp)
  EXPECT_EQ(round_to_bf16(1.0f + 1.5f * ulp), 1.0f + 2 * ulp);
  // just above halfway rounds up, just below rounds down
  EXPECT_EQ(round_to_bf16(std::nextafter(1.0f + ulp / 2, 2.0f)), 1.0f + ulp);
  EXPECT_EQ(round_to_bf16(std::nextafter(1.0f + ulp / 2, 0.0f)), 1.0f);
  EXPECT_EQ(round_to_bf16(-(1.0f + 0.75f * ulp)), -(1.0f + ulp));
}

TEST(Bf16, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(round_to_bf16(inf), inf);
  EXPECT_EQ(round_to_bf16(-inf), -inf);
  EXPECT_TRUE(std::isnan(round_to_bf16(std::nanf(""))));
  // a NaN whose payload sits only in the low 16 bits must stay NaN (not become inf)
  EXPECT_TRUE(std::isnan(round_to_bf16(bits_float(0x7f800001u))));
  // the largest float rounds past bf16's largest finite value to inf
  EXPECT_EQ(round_to_bf16(std::numeric_limits<float>::max()), inf);
  EXPECT_EQ(round_to_bf16(bits_float(0x7f7f0000u)), bits_float(0x7f7f0000u));  // bf16 max
  // subnormals keep their top bits
  EXPECT_EQ(round_to_bf16(bits_float(0x00010000u)), bits_float(0x00010000u));
}

TEST(Bf16, RelativeErrorBound) {
  std::mt19937 gen(7);
  std::normal_distribution<float> d(0.f, 100.f);
  double worst = 0.0, sum = 0.0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const float x = d(gen);
    if (x == 0.f) continue;
    const double e = std::fabs((static_cast<double>(round_to_bf16(x)) - x) / x);
    worst = std::max(worst, e);
    sum += e;
    // round trip of a bf16 value is exact
    EXPECT_EQ(round_to_bf16(round_to_bf16(x)), round_to_bf16(x));
  }
  EXPECT_LE(worst, kBf16UnitRoundoff);  // |error| <= 2^-8 relative
  EXPECT_GT(worst, kBf16UnitRoundoff / 2);
  EXPECT_LT(sum / n, kBf16UnitRoundoff / 2);  // mean ~ u/4 for uniform mantissa errors
}

TEST(Tf32, RoundingBound) {
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> d(-10.f, 10.f);
  double worst = 0.0;
  for (int i = 0; i < 100000; ++i) {
    const float x = d(gen);
    if (x == 0.f) continue;
    const float r = round_to_tf32(x);
    EXPECT_EQ(float_bits(r) & 0x1fffu, 0u);  // only 10 mantissa bits left
    worst = std::max(worst, std::fabs((static_cast<double>(r) - x) / x));
  }
  EXPECT_LE(worst, kTf32UnitRoundoff);
  EXPECT_EQ(round_to_tf32(1.0f), 1.0f);
}

}  // namespace
}  // namespace cuda
}  // namespace paci
