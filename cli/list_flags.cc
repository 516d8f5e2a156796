#include "cli/list_flags.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "cli/common.h"
#include "schedules/files.h"

namespace paci::cli {
namespace {

// A whole string as an int in lo..hi (no sign tricks, no overflow, no trailing text).
bool to_int(const std::string& s, long lo, long hi, int* out) {
  if (s.empty() || s.size() > 12) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (!(std::isdigit(static_cast<unsigned char>(s[i])) || (i == 0 && (s[i] == '-' || s[i] == '+'))))
      return false;
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size() || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

bool to_double(const std::string& s, double* out) {
  if (s.empty() || s.size() > 40) return false;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

}  // namespace

std::vector<std::string> split_list(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    size_t k = s.find(sep, at);
    if (k == std::string::npos) k = s.size();
    if (k > at) out.push_back(s.substr(at, k - at));
    at = k + 1;
  }
  return out;
}

std::vector<std::string> parse_compare_list(const std::string& spec) {
  if (std::count(spec.begin(), spec.end(), ',') >= static_cast<long>(kMaxCompared) * 4)
    throw UsageError(fmt::format("--compare: at most {} schedules (got '{}')", kMaxCompared, excerpt(spec)));
  std::vector<std::string> names = split_list(spec, ',');
  if (names.empty()) throw UsageError("--compare: give schedule names separated by commas");
  if (names.size() > kMaxCompared)
    throw UsageError(fmt::format("--compare: at most {} schedules (got {})", kMaxCompared, names.size()));
  for (const auto& n : names)
    if (n.size() > 64)
      throw UsageError(fmt::format("--compare: '{}' is not a schedule name (at most 64 characters)", excerpt(n)));
  return names;
}

SweepSpec parse_sweep(const std::string& spec) {
  static const std::vector<std::string> keys = {"microbatches", "stages", "steps", "accum", "virtual", "mb-size"};
  size_t eq = spec.find('=');
  std::string key = spec.substr(0, eq);
  if (eq == std::string::npos || std::find(keys.begin(), keys.end(), key) == keys.end())
    throw UsageError(fmt::format("--sweep: '{}' is not KEY=RANGE with KEY one of microbatches, stages, steps, "
                                 "accum, virtual, mb-size", excerpt(spec)));
  std::string range = spec.substr(eq + 1);
  auto num = [&](const std::string& s) {
    int v = 0;
    if (!to_int(s, 1, 1L << 30, &v))
      throw UsageError(fmt::format("--sweep {}: '{}' is not an integer in 1..{} (ranges: A:B doubles, A:B:STEP, "
                                   "A,B,C)", key, excerpt(s), 1L << 30));
    return v;
  };
  auto too_many = [&](long n) {
    return UsageError(fmt::format("--sweep {}: {} values (allowed 1..{})", key, n, kMaxSweepValues));
  };
  SweepSpec out{key, {}};
  if (range.find(':') != std::string::npos) {
    if (std::count(range.begin(), range.end(), ':') > 2)
      throw UsageError(fmt::format("--sweep {}: '{}' is not A:B or A:B:STEP", key, excerpt(range)));
    auto parts = split_list(range, ':');
    if (parts.size() < 2 || parts.size() > 3)
      throw UsageError(fmt::format("--sweep {}: '{}' is not A:B or A:B:STEP", key, excerpt(range)));
    const long a = num(parts[0]), b = num(parts[1]);
    if (b < a) throw UsageError(fmt::format("--sweep {}: {} > {}", key, a, b));
    if (parts.size() == 3) {
      const long step = num(parts[2]);
      const long n = (b - a) / step + 1;
      if (n > static_cast<long>(kMaxSweepValues)) throw too_many(n);
      for (long v = a; v <= b; v += step) out.values.push_back(static_cast<int>(v));
    } else {
      for (long v = a; v <= b; v *= 2) out.values.push_back(static_cast<int>(v));
    }
  } else {
    const long commas = std::count(range.begin(), range.end(), ',');
    if (commas >= static_cast<long>(kMaxSweepValues)) throw too_many(commas + 1);
    for (const auto& s : split_list(range, ',')) out.values.push_back(num(s));
  }
  if (out.values.empty() || out.values.size() > kMaxSweepValues) throw too_many(static_cast<long>(out.values.size()));
  return out;
}

std::pair<int, double> parse_straggler(const std::string& s) {
  size_t eq = s.find('=');
  int stage = 0;
  double factor = 0;
  if (eq == std::string::npos || !to_int(s.substr(0, eq), 0, 1 << 20, &stage) ||
      !to_double(s.substr(eq + 1), &factor))
    throw UsageError(fmt::format("--straggler: '{}' is not STAGE=FACTOR (e.g. 3=1.5; stage >= 0, factor a "
                                 "finite number)", excerpt(s)));
  if (!(factor > 0) || !(factor <= kMaxStragglerFactor))
    throw UsageError(fmt::format("--straggler {}: the factor must be in (0, {}]", excerpt(s), kMaxStragglerFactor));
  return {stage, factor};
}

}  // namespace paci::cli
