// bfloat16 rounding helpers on the host (no CUDA headers): the bf16 compute mode's
// reference rounding, used by the CPU tests and by the self-test's error model.
// bf16 = the upper 16 bits of an IEEE float: 8 exponent bits, 7 stored mantissa bits, so a
// round-to-nearest-even conversion has relative error at most 2^-8 = 0.39%.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace paci {
namespace cuda {

constexpr double kBf16UnitRoundoff = 1.0 / 256.0;  // 2^-8
constexpr double kTf32UnitRoundoff = 1.0 / 2048.0;  // 2^-11 (10 stored mantissa bits)
constexpr double kFp32UnitRoundoff = 1.0 / 16777216.0;  // 2^-24

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest, ties to even (what __float2bfloat16_rn does); NaN stays a (quiet) NaN,
// ±inf stays ±inf, values past bf16's largest finite number round to ±inf.
inline uint16_t float_to_bf16_bits(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0) {
    return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN, sign kept
  }
  const uint32_t lsb = (u >> 16) & 1u;
  const uint32_t rounded = u + 0x7fffu + lsb;
  return static_cast<uint16_t>(rounded >> 16);
}

inline float bf16_bits_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

inline float round_to_bf16(float f) { return bf16_bits_to_float(float_to_bf16_bits(f)); }

// TF32 operand rounding as cuBLAS's tensor cores see it (10 mantissa bits; round to nearest).
inline float round_to_tf32(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7f800000u) == 0x7f800000u) return f;
  const uint32_t lsb = (u >> 13) & 1u;
  return bits_float((u + 0xfffu + lsb) & 0xffffe000u);
}

}  // namespace cuda
}  // namespace paci
