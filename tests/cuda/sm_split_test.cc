#include "exec/cuda/sm_split.h"

#include <gtest/gtest.h>

#include <numeric>
#include <stdexcept>

namespace paci {
namespace cuda {
namespace {

constexpr int kH100Sms = 132;  // H100 SXM and H200: 132 SMs

int sum(const std::vector<int>& v) { return std::accumulate(v.begin(), v.end(), 0); }

TEST(SmSplit, RulesPerComputeCapability) {
  // cuda.h 13.0, "Green Contexts": 9.0+: min 8, multiple of 8; 8.x: min 4, multiple of 2;
  // 6.x/7.x: min 2, multiple of 2.
  EXPECT_EQ(green_context_rules(9, 0).min_count, 8);
  EXPECT_EQ(green_context_rules(9, 0).alignment, 8);
  EXPECT_EQ(green_context_rules(10, 0).min_count, 8);
  EXPECT_EQ(green_context_rules(8, 0).min_count, 4);
  EXPECT_EQ(green_context_rules(8, 6).alignment, 2);
  EXPECT_EQ(green_context_rules(7, 0).min_count, 2);
  EXPECT_EQ(sm_unit(green_context_rules(9, 0)), 8);
  EXPECT_EQ(sm_unit(green_context_rules(8, 0)), 4);
  EXPECT_EQ(sm_unit({6, 4}), 8);  // max(6, 4) rounded up to a multiple of 4
  EXPECT_THROW(sm_unit({0, 8}), std::invalid_argument);
}

TEST(SmSplit, EqualOnHopper) {
  const SmSplitRules h = green_context_rules(9, 0);
  struct Case {
    int stages, each, unused;
  };
  for (Case c : {Case{1, 128, 4}, Case{2, 64, 4}, Case{3, 40, 12}, Case{4, 32, 4},
                 Case{5, 24, 12}, Case{8, 16, 4}, Case{16, 8, 4}}) {
    const SmSplit s = equal_sm_split(kH100Sms, c.stages, h);
    ASSERT_EQ(static_cast<int>(s.sms.size()), c.stages);
    for (int x : s.sms) {
      EXPECT_EQ(x, c.each) << c.stages;
      EXPECT_EQ(x % 8, 0);
      EXPECT_GE(x, 8);
    }
    EXPECT_EQ(s.unused_sms, c.unused) << c.stages;
    EXPECT_EQ(sum(s.sms) + s.unused_sms, kH100Sms);
    EXPECT_EQ(s.units_available, 16);
  }
  EXPECT_THROW(equal_sm_split(kH100Sms, 17, h), std::invalid_argument);  // 132/17 < 8
  EXPECT_THROW(equal_sm_split(kH100Sms, 0, h), std::invalid_argument);
  EXPECT_EQ(equal_sm_split(kH100Sms, 4, h).describe(),
            "4 stages: 32+32+32+32 of 132 SMs (8-SM units, 4 unused)");
}

TEST(SmSplit, DriverMayOfferFewerGroups) {
  // cuDevSmResourceSplitByCount may create fewer groups than total/minCount (clusters):
  // the plan uses the count the driver reports.
  const SmSplit s = equal_sm_split(kH100Sms, 4, green_context_rules(9, 0), 14);
  for (int x : s.sms) EXPECT_EQ(x, 24);  // 14 units / 4 = 3 units each
  EXPECT_EQ(s.unused_sms, kH100Sms - 96);
  EXPECT_THROW(equal_sm_split(kH100Sms, 4, green_context_rules(9, 0), 3), std::invalid_argument);
}

TEST(SmSplit, Weighted) {
  const SmSplitRules h = green_context_rules(9, 0);
  // 16 units: 4 go one each, 12 by weight 1:1:1:2 → 2.4, 2.4, 2.4, 4.8 → 2,2,2,4 + 2 by
  // largest remainder (stage 3: .8, then stage 0: .4 — ties go to the lower index).
  const SmSplit s = weighted_sm_split(kH100Sms, {1, 1, 1, 2}, h);
  EXPECT_EQ(s.units, (std::vector<int>{4, 3, 3, 6}));
  EXPECT_EQ(s.sms, (std::vector<int>{32, 24, 24, 48}));
  EXPECT_EQ(sum(s.units), 16);
  EXPECT_EQ(s.unused_sms, 4);
  // equal weights = equal split
  EXPECT_EQ(weighted_sm_split(kH100Sms, {1, 1, 1, 1}, h).sms, equal_sm_split(kH100Sms, 4, h).sms);
  // a zero weight still gets its minimum unit
  const SmSplit z = weighted_sm_split(kH100Sms, {0, 1}, h);
  EXPECT_EQ(z.units, (std::vector<int>{1, 15}));
  // every unit is handed out, each stage >= 1, for many weight vectors
  for (int P = 1; P <= 16; ++P) {
    std::vector<double> w(P);
    for (int i = 0; i < P; ++i) w[i] = 1.0 + (i * 37 % 11);
    const SmSplit x = weighted_sm_split(kH100Sms, w, h);
    EXPECT_EQ(sum(x.units), 16) << P;
    for (int u : x.units) EXPECT_GE(u, 1);
  }
  EXPECT_THROW(weighted_sm_split(kH100Sms, {}, h), std::invalid_argument);
  EXPECT_THROW(weighted_sm_split(kH100Sms, {0, 0}, h), std::invalid_argument);
  EXPECT_THROW(weighted_sm_split(kH100Sms, {1, -1}, h), std::invalid_argument);
  EXPECT_THROW(weighted_sm_split(kH100Sms, std::vector<double>(17, 1.0), h),
               std::invalid_argument);
}

TEST(SmSplit, ParseSpec) {
  const SmSplitRules h = green_context_rules(9, 0);
  EXPECT_TRUE(parse_sm_partition("off", kH100Sms, 4, {}, h).units.empty());
  EXPECT_EQ(parse_sm_partition("equal", kH100Sms, 4, {}, h).sms,
            (std::vector<int>{32, 32, 32, 32}));
  EXPECT_EQ(parse_sm_partition("weighted", kH100Sms, 2, {1, 3}, h).sms,
            (std::vector<int>{40, 88}));  // 14 spare units: 3.5 → 4, 10.5 → 10 (tie → stage 0)
  EXPECT_EQ(parse_sm_partition("64+32+32", kH100Sms, 3, {}, h).sms,
            (std::vector<int>{64, 32, 32}));
  EXPECT_EQ(parse_sm_partition("64+32+32", kH100Sms, 3, {}, h).unused_sms, 4);
  EXPECT_THROW(parse_sm_partition("60+32+32", kH100Sms, 3, {}, h), std::invalid_argument);
  EXPECT_THROW(parse_sm_partition("64+32", kH100Sms, 3, {}, h), std::invalid_argument);
  EXPECT_THROW(parse_sm_partition("64+64+8", kH100Sms, 3, {}, h), std::invalid_argument);
  EXPECT_THROW(parse_sm_partition("64+x+32", kH100Sms, 3, {}, h), std::invalid_argument);
  EXPECT_THROW(parse_sm_partition("weighted", kH100Sms, 3, {1}, h), std::invalid_argument);
}

}  // namespace
}  // namespace cuda
}  // namespace paci
