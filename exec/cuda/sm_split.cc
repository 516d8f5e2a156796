#include "exec/cuda/sm_split.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace paci {
namespace cuda {

SmSplitRules green_context_rules(int cc_major, int /*cc_minor*/) {
  if (cc_major >= 9) return {8, 8};
  if (cc_major == 8) return {4, 2};
  return {2, 2};  // 6.x, 7.x
}

int sm_unit(const SmSplitRules& r) {
  if (r.min_count < 1 || r.alignment < 1) {
    throw std::invalid_argument("SM split: min_count and alignment must be positive");
  }
  const int m = std::max(r.min_count, r.alignment);
  return (m + r.alignment - 1) / r.alignment * r.alignment;
}

std::string SmSplit::describe() const {
  std::ostringstream os;
  int total = unused_sms;
  for (int s : sms) total += s;
  os << sms.size() << " stage" << (sms.size() == 1 ? "" : "s") << ": ";
  for (size_t i = 0; i < sms.size(); ++i) os << (i ? "+" : "") << sms[i];
  os << " of " << total << " SMs (" << unit << "-SM units, " << unused_sms << " unused)";
  return os.str();
}

namespace {

int available(int total_sms, int unit, int units_available) {
  if (total_sms < 1) throw std::invalid_argument("SM split: the device has no SMs");
  const int cap = total_sms / unit;
  if (units_available < 0) return cap;
  return std::min(units_available, cap);
}

SmSplit finish(int total_sms, int unit, int avail, std::vector<int> units) {
  SmSplit s;
  s.unit = unit;
  s.units_available = avail;
  s.units = std::move(units);
  int used = 0;
  for (int u : s.units) {
    s.sms.push_back(u * unit);
    used += u * unit;
  }
  s.unused_sms = total_sms - used;
  return s;
}

}  // namespace

SmSplit equal_sm_split(int total_sms, int stages, const SmSplitRules& rules, int units_available) {
  if (stages < 1) throw std::invalid_argument("SM split: need at least one stage");
  const int unit = sm_unit(rules);
  const int avail = available(total_sms, unit, units_available);
  if (avail < stages) {
    throw std::invalid_argument("SM split: " + std::to_string(stages) + " stages need " +
                                std::to_string(stages) + " groups of at least " +
                                std::to_string(unit) + " SMs, but the device offers " +
                                std::to_string(avail) + " (" + std::to_string(total_sms) +
                                " SMs)");
  }
  return finish(total_sms, unit, avail, std::vector<int>(stages, avail / stages));
}

SmSplit weighted_sm_split(int total_sms, const std::vector<double>& weights,
                          const SmSplitRules& rules, int units_available) {
  const int P = static_cast<int>(weights.size());
  if (P < 1) throw std::invalid_argument("SM split: need at least one stage");
  double sum = 0.0;
  for (double w : weights) {
    if (!(w >= 0.0) || !std::isfinite(w)) {
      throw std::invalid_argument("SM split: weights must be finite and non-negative");
    }
    sum += w;
  }
  if (sum <= 0.0) throw std::invalid_argument("SM split: weights are all zero");
  const int unit = sm_unit(rules);
  const int avail = available(total_sms, unit, units_available);
  if (avail < P) {
    throw std::invalid_argument("SM split: " + std::to_string(P) + " stages but only " +
                                std::to_string(avail) + " groups of " + std::to_string(unit) +
                                " SMs");
  }
  // One unit each, then the remaining units by largest remainder of the ideal shares.
  std::vector<int> units(P, 1);
  const int rest = avail - P;
  std::vector<double> frac(P);
  int given = 0;
  for (int s = 0; s < P; ++s) {
    const double ideal = rest * weights[s] / sum;
    const int whole = static_cast<int>(std::floor(ideal));
    units[s] += whole;
    given += whole;
    frac[s] = ideal - whole;
  }
  std::vector<int> order(P);
  for (int s = 0; s < P; ++s) order[s] = s;
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return frac[a] > frac[b]; });
  for (int i = 0; given < rest; ++i, ++given) units[order[i % P]] += 1;
  return finish(total_sms, unit, avail, std::move(units));
}

SmSplit parse_sm_partition(const std::string& spec, int total_sms, int stages,
                           const std::vector<double>& weights, const SmSplitRules& rules,
                           int units_available) {
  if (spec == "off" || spec.empty()) return SmSplit{};
  if (spec == "equal") return equal_sm_split(total_sms, stages, rules, units_available);
  if (spec == "weighted") {
    if (static_cast<int>(weights.size()) != stages) {
      throw std::invalid_argument("--sm-partition weighted: need one weight per stage");
    }
    return weighted_sm_split(total_sms, weights, rules, units_available);
  }
  const int unit = sm_unit(rules);
  const int avail = available(total_sms, unit, units_available);
  std::vector<int> units;
  std::stringstream ss(spec);
  std::string item;
  int sum_units = 0;
  while (std::getline(ss, item, '+')) {
    size_t used = 0;
    int n = 0;
    try {
      n = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || n <= 0) {
      throw std::invalid_argument("--sm-partition: '" + item +
                                  "' is not a positive SM count (expected off, equal, weighted "
                                  "or counts like 64+32+32)");
    }
    if (n % unit != 0) {
      throw std::invalid_argument("--sm-partition: " + std::to_string(n) +
                                  " SMs is not a multiple of the " + std::to_string(unit) +
                                  "-SM unit green contexts use on this device");
    }
    units.push_back(n / unit);
    sum_units += n / unit;
  }
  if (static_cast<int>(units.size()) != stages) {
    throw std::invalid_argument("--sm-partition: " + std::to_string(units.size()) +
                                " counts for " + std::to_string(stages) + " stages");
  }
  if (sum_units > avail) {
    throw std::invalid_argument("--sm-partition: " + std::to_string(sum_units * unit) +
                                " SMs asked, " + std::to_string(avail * unit) +
                                " can be partitioned");
  }
  return finish(total_sms, unit, avail, std::move(units));
}

}  // namespace cuda
}  // namespace paci
