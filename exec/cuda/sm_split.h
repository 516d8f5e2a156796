// How P pipeline stages divide one GPU's SMs with CUDA green contexts (`--sm-partition`).
// Plain C++ (no CUDA headers): tested on the CPU in tests/cuda/sm_split_test.cc.
//
// Green contexts take SM groups made by cuDevSmResourceSplitByCount, which honours the
// device's minimum partition size and co-scheduling alignment (CUdevSmResource
// minSmPartitionSize / smCoscheduledAlignment, read with cuDeviceGetDevResource). The CUDA 13.0
// driver header (cuda.h, "Green Contexts") gives as guideline: compute capability 6.x/7.x:
// minimum 2 SMs, multiple of 2; 8.x: minimum 4, multiple of 2; 9.0+: minimum 8, multiple of 8.
// The split may create fewer groups than total/minCount (cluster requirements), so the plan
// below takes the number of groups the driver reports when it knows it.
//
// On an H100/H200 (132 SMs): units of 8 SMs, 16 units (128 SMs) and 4 SMs left over; P = 4
// equal stages get 32 SMs each. A weighted split gives stage s a whole number of units
// proportional to its cost; several units combine into one green context
// (cuDevResourceGenerateDesc takes an array of resources).
#pragma once

#include <string>
#include <vector>

namespace paci {
namespace cuda {

struct SmSplitRules {
  int min_count = 8;  // smallest group
  int alignment = 8;  // group sizes are multiples of this
};

// The guideline of cuda.h for a compute capability (used when the driver cannot be asked).
SmSplitRules green_context_rules(int cc_major, int cc_minor);

// The SM count of one split unit: max(min_count, alignment) rounded up to the alignment.
int sm_unit(const SmSplitRules& rules);

struct SmSplit {
  int unit = 0;                  // SMs per unit
  int units_available = 0;       // units the device offers
  std::vector<int> units;        // per stage
  std::vector<int> sms;          // per stage: units[s] * unit
  int unused_sms = 0;            // total − Σ sms
  std::string describe() const;  // e.g. "4 stages: 32+32+32+32 of 132 SMs (8-SM units, 4 unused)"
};

// Equal split: every stage gets the same number of units, as many as fit. Throws
// std::invalid_argument if stages < 1 or the device has fewer units than stages.
// units_available < 0: total_sms / unit (the driver may report fewer; pass that then).
SmSplit equal_sm_split(int total_sms, int stages, const SmSplitRules& rules,
                       int units_available = -1);

// Weighted split: every stage gets at least one unit; all units are handed out, in proportion
// to `weights` (e.g. predicted stage times) by largest remainder (ties to the lower stage
// index). Throws std::invalid_argument on empty/negative/all-zero weights or too few units.
SmSplit weighted_sm_split(int total_sms, const std::vector<double>& weights,
                          const SmSplitRules& rules, int units_available = -1);

// Parses --sm-partition: "off" | "equal" | "weighted" | a '+'-separated list of SM counts
// ("64+32+32"). For an explicit list each count must be a positive multiple of the unit and
// the sum must fit; returns the split, throws std::invalid_argument with the reason otherwise.
// "off" returns an empty split (units empty).
SmSplit parse_sm_partition(const std::string& spec, int total_sms, int stages,
                           const std::vector<double>& weights, const SmSplitRules& rules,
                           int units_available = -1);

}  // namespace cuda
}  // namespace paci
