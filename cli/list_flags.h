// Parsers of the flags that take lists: --compare A,B,C; --sweep KEY=RANGE; --straggler
// STAGE=FACTOR (--partition's layout is parsed by parse_layout, exec/model/partition.h). Each throws UsageError (one line naming the flag, the
// offending text as an escaped excerpt, and what is allowed) and nothing else; sizes are capped
// before anything is allocated. Kept apart from the commands so the fuzz harness
// tests/fuzz/list_flags_fuzz.cc can call them.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace paci::cli {

// Items of `s` split at `sep`, empty items dropped.
std::vector<std::string> split_list(const std::string& s, char sep);

// --compare: 1..kMaxCompared names of at most 64 characters each.
inline constexpr size_t kMaxCompared = 64;
std::vector<std::string> parse_compare_list(const std::string& spec);

// --sweep KEY=A:B (doubling), KEY=A:B:STEP or KEY=A,B,C: 1..kMaxSweepValues integers >= 1.
inline constexpr size_t kMaxSweepValues = 1000;
struct SweepSpec {
  std::string key;
  std::vector<int> values;
};
SweepSpec parse_sweep(const std::string& spec);

// --straggler STAGE=FACTOR: stage >= 0, factor in (0, kMaxStragglerFactor].
inline constexpr double kMaxStragglerFactor = 1000;
std::pair<int, double> parse_straggler(const std::string& spec);

}  // namespace paci::cli
