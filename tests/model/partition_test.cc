// Units, the `--partition` layout grammar and the one partitioner (min-max over unit costs
// under a per-device memory limit), checked against brute force.
#include "exec/model/partition.h"

#include <gtest/gtest.h>

#include "tests/model/error_of.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "exec/model/param_layout.h"

namespace paci {
namespace {

using paci::testing::error_of;

GptConfig blocks(int L) {
  GptConfig cfg = preset("tiny");
  cfg.layers = L;
  return cfg;
}

TEST(Units, Numbering) {
  const GptConfig cfg = blocks(3);
  EXPECT_EQ(num_units(cfg), 8);
  EXPECT_EQ(unit_kind(cfg, 0), UnitKind::kEmbedding);
  EXPECT_EQ(unit_kind(cfg, 1), UnitKind::kAttention);
  EXPECT_EQ(unit_kind(cfg, 2), UnitKind::kMlp);
  EXPECT_EQ(unit_kind(cfg, 5), UnitKind::kAttention);
  EXPECT_EQ(unit_kind(cfg, 7), UnitKind::kHead);
  EXPECT_EQ(unit_layer(5), 2);
  EXPECT_EQ(unit_name(cfg, 4), "h.1.mlp");
  EXPECT_THROW(unit_kind(cfg, 8), std::out_of_range);
  // Every unit range round-trips through StagePartition.
  for (int a = 0; a < 8; ++a)
    for (int b = a; b < 8; ++b) {
      const StagePartition p = stage_from_units(cfg, a, b);
      EXPECT_EQ(p.first_unit(), a) << a << ".." << b;
      EXPECT_EQ(p.last_unit(), b) << a << ".." << b;
      int halves = 0;
      for (int u = a; u <= b; ++u) halves += unit_layer(u) >= 0 && u < 7;
      EXPECT_EQ(p.num_halves(), halves);
    }
}

TEST(Units, ParamsSumToTheModel) {
  for (const std::string& name : preset_names()) {
    const GptConfig cfg = preset(name);
    int64_t n = 0;
    for (int u = 0; u < num_units(cfg); ++u) n += unit_parameters(cfg, u);
    EXPECT_EQ(n, num_parameters(cfg)) << name;
  }
}

TEST(Layout, ParsesHalvesAndMarkers) {
  const GptConfig cfg = blocks(2);
  auto p = parse_layout(cfg, "E+0.5,1,0.5+H");
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0], (StagePartition{0, 0, true, false, false, true}));
  EXPECT_EQ(p[1], (StagePartition{0, 1, false, false, true, true}));
  EXPECT_EQ(p[2], (StagePartition{1, 1, false, true, true, false}));
  p = parse_layout(cfg, "E,1,1,H");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0], (StagePartition{0, -1, true, false}));
  EXPECT_EQ(p[1], (StagePartition{0, 0, false, false}));
  EXPECT_EQ(p[3], (StagePartition{2, 1, false, true}));
  EXPECT_EQ(p[3].first_unit(), 5);
  p = parse_layout(cfg, "1.5,0.5+H");
  EXPECT_EQ(p[0], (StagePartition{0, 1, true, false, false, true}));
  EXPECT_EQ(p[1], (StagePartition{1, 1, false, true, true, false}));
  // Markers are optional; "1.50" and "0.5" forms, lower case.
  EXPECT_EQ(parse_layout(cfg, "e+1.50,0.5+h"), parse_layout(cfg, "1.5,0.5"));
}

TEST(Layout, OldFormsKeepWorking) {
  const GptConfig cfg = blocks(4);
  EXPECT_EQ(parse_layout(cfg, "2,1,1"), partition_from_layers(cfg, {2, 1, 1}));
  EXPECT_EQ(parse_layout(cfg, "0,4,0"), partition_from_layers(cfg, {0, 4, 0}));
  EXPECT_EQ(parse_layout(cfg, "4"), partition_from_layers(cfg, {4}));
  EXPECT_EQ(parse_layout(cfg, "0,4"), partition_from_layers(cfg, {0, 4}));
  EXPECT_EQ(parse_layout(cfg, "E,4,H"), partition_from_layers(cfg, {0, 4, 0}));
}

TEST(Layout, RoundTrip) {
  for (int L : {1, 2, 3, 5}) {
    const GptConfig cfg = blocks(L);
    const int U = num_units(cfg);
    // Every split of U units into contiguous stages (2^(U-1) of them).
    for (unsigned mask = 0; mask < (1u << (U - 1)); ++mask) {
      std::vector<int> bounds = {0};
      for (int u = 1; u < U; ++u)
        if (mask & (1u << (u - 1))) bounds.push_back(u);
      bounds.push_back(U);
      const auto parts = partition_from_units(cfg, bounds);
      const std::string text = format_layout(parts);
      std::vector<StagePartition> back;
      ASSERT_NO_THROW(back = parse_layout(cfg, text)) << text;
      EXPECT_EQ(back, parts) << text;
      EXPECT_EQ(unit_bounds(back), bounds) << text;
      EXPECT_NO_THROW(check_partition(cfg, back)) << text;
    }
  }
  EXPECT_EQ(format_layout(parse_layout(blocks(24), "3,3,3,3,3,3,3.5,2.5")), "E+3,3,3,3,3,3,3.5,2.5+H");
  EXPECT_EQ(format_layout(parse_layout(blocks(2), "2")), "E+2+H");
  EXPECT_EQ(format_layout(parse_layout(blocks(2), "0,2,0")), "E,2,H");
}

TEST(Layout, ErrorsNameTheEntry) {
  const GptConfig cfg = blocks(4);
  auto err = [&](const std::string& t) { return error_of([&] { parse_layout(cfg, t); }); };
  EXPECT_NE(err("2,1").find("blocks sum to 3 but the model has 4"), std::string::npos) << err("2,1");
  EXPECT_NE(err("2,1.25,0.75").find("entry 2 '1.25'"), std::string::npos) << err("2,1.25,0.75");
  EXPECT_NE(err("2,1.25,0.75").find("multiple of 0.5"), std::string::npos);
  EXPECT_NE(err("2,0,2").find("entry 2 '0'"), std::string::npos) << err("2,0,2");
  EXPECT_NE(err("2,0,2").find("at least half a block"), std::string::npos);
  EXPECT_NE(err("2,E+2").find("E (the embedding) may only start the first stage"), std::string::npos);
  EXPECT_NE(err("2+E,2").find("entry 1"), std::string::npos);
  EXPECT_NE(err("H+2,2").find("H (the head) may only end the last stage"), std::string::npos);
  EXPECT_NE(err("2,H+2").find("entry 2"), std::string::npos);
  EXPECT_NE(err("2,,2").find("entry 2 '' is empty"), std::string::npos) << err("2,,2");
  EXPECT_NE(err("2,x").find("'x' is not E, H or a number of blocks"), std::string::npos) << err("2,x");
  EXPECT_NE(err("2,-1,3").find("'-1'"), std::string::npos);
  EXPECT_NE(err("2,1.,1").find("'1.'"), std::string::npos);
  EXPECT_NE(err("").find("empty"), std::string::npos);
  for (const std::string& t : {"2,1", "2,0,2", "2,E+2", "2,,2"}) EXPECT_EQ(err(t).rfind("partition: ", 0), 0u) << t;
}

// ---- the partitioner against brute force ----

struct Brute {
  double max_time = std::numeric_limits<double>::infinity();
  double sumsq = std::numeric_limits<double>::infinity();
  bool feasible = false;
};

// Every contiguous split of U units into S non-empty stages.
void for_each_split(int U, int S, const std::function<void(const std::vector<int>&)>& f) {
  std::vector<int> b(S + 1);
  b[0] = 0;
  b[S] = U;
  std::function<void(int)> rec = [&](int s) {
    if (s == S) return f(b);
    for (int k = b[s - 1] + 1; k <= U - (S - s); ++k) {
      b[s] = k;
      rec(s + 1);
    }
  };
  if (S == 1) return f(b);
  rec(1);
}

std::vector<double> stage_times(const std::vector<UnitCost>& u, const std::vector<int>& b) {
  std::vector<double> t;
  for (size_t s = 0; s + 1 < b.size(); ++s) {
    double x = 0;
    for (int k = b[s]; k < b[s + 1]; ++k) x += u[k].time;
    t.push_back(x);
  }
  return t;
}

bool fits(const std::vector<UnitCost>& u, const std::vector<int>& b, const PartitionLimits& lim) {
  if (lim.memory_limit <= 0) return true;
  for (double m : stage_memory(u, b, lim))
    if (m > lim.memory_limit * (1 + 1e-12)) return false;
  return true;
}

Brute brute(const std::vector<UnitCost>& u, int S, const PartitionLimits& lim) {
  Brute r;
  for_each_split(static_cast<int>(u.size()), S, [&](const std::vector<int>& b) {
    if (!fits(u, b, lim)) return;
    const auto t = stage_times(u, b);
    r.feasible = true;
    r.max_time = std::min(r.max_time, *std::max_element(t.begin(), t.end()));
  });
  if (!r.feasible) return r;
  const double cap = r.max_time + std::abs(r.max_time) * 1e-9;
  for_each_split(static_cast<int>(u.size()), S, [&](const std::vector<int>& b) {
    if (!fits(u, b, lim)) return;
    const auto t = stage_times(u, b);
    if (*std::max_element(t.begin(), t.end()) > cap) return;
    double q = 0;
    for (double x : t) q += x * x;
    r.sumsq = std::min(r.sumsq, q);
  });
  return r;
}

TEST(MinMaxPartition, OptimalAgainstBruteForce) {
  NormalStream rng(2026, 13);
  int checked = 0, limited = 0, impossible = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const int U = 1 + static_cast<int>(rng.next_u64() % 12);
    const int S = 1 + static_cast<int>(rng.next_u64() % std::min(U, 5));
    std::vector<UnitCost> u(U);
    for (UnitCost& c : u) {
      c.time = 0.1 + rng.next_uniform() * (rng.next_uniform() < 0.2 ? 10 : 1);
      c.static_bytes = rng.next_uniform() * 100;
      c.activation_bytes = rng.next_uniform() * 20;
    }
    PartitionLimits lim;
    if (trial % 3 != 0) {
      if (trial % 2) {
        for (int s = 0; s < S; ++s) lim.inflight.push_back(1 + static_cast<double>(rng.next_u64() % 6));
      }
      // A limit between the tightest possible and the loosest.
      const double lo = 0, hi = 2000;
      lim.memory_limit = lo + rng.next_uniform() * (hi - lo) * 0.3 + 50;
    }
    const Brute b = brute(u, S, lim);
    if (!b.feasible) {
      const std::string e = error_of([&] { min_max_partition(u, S, lim); });
      EXPECT_NE(e.find("smallest per-device memory that fits is"), std::string::npos) << e;
      ++impossible;
      continue;
    }
    const std::vector<int> got = min_max_partition(u, S, lim);
    ASSERT_EQ(static_cast<int>(got.size()), S + 1);
    EXPECT_EQ(got.front(), 0);
    EXPECT_EQ(got.back(), U);
    for (int s = 0; s < S; ++s) EXPECT_LT(got[s], got[s + 1]);
    EXPECT_TRUE(fits(u, got, lim)) << "trial " << trial;
    const auto t = stage_times(u, got);
    double q = 0;
    for (double x : t) q += x * x;
    EXPECT_NEAR(*std::max_element(t.begin(), t.end()), b.max_time, 1e-9 * b.max_time) << "trial " << trial;
    EXPECT_NEAR(q, b.sumsq, 1e-9 * b.sumsq) << "trial " << trial;
    ++checked;
    limited += lim.memory_limit > 0;
  }
  EXPECT_GT(checked, 150);
  EXPECT_GT(limited, 50);
  EXPECT_GT(impossible, 0);
}

TEST(MinMaxPartition, MemoryLimitMovesTheSplit) {
  // Four equal units; the first two hold big weights. Unlimited: 2 | 2. With a limit the
  // heavy units must be spread: 1 | 3 is not allowed (stage 1 would hold 3 units), so the
  // only fitting split of 2 stages puts unit 0 alone.
  std::vector<UnitCost> u(4, UnitCost{1, 1, 0});
  u[0].static_bytes = u[1].static_bytes = 10;
  EXPECT_EQ(min_max_partition(u, 2), (std::vector<int>{0, 2, 4}));
  PartitionLimits lim;
  lim.memory_limit = 12;
  EXPECT_EQ(min_max_partition(u, 2, lim), (std::vector<int>{0, 1, 4}));
  // In-flight activations: stage 0 of 1F1B holds P = 2 micro-batches, stage 1 one.
  std::vector<UnitCost> a(4, UnitCost{1, 0, 1});
  lim.memory_limit = 3;
  EXPECT_EQ(min_max_partition(a, 2, lim), (std::vector<int>{0, 1, 4}));  // 2x1, 1x3
  lim.inflight = {1, 1};
  EXPECT_EQ(min_max_partition(a, 2, lim), (std::vector<int>{0, 2, 4}));
  EXPECT_EQ(stage_memory(a, {0, 1, 4}, PartitionLimits{}), (std::vector<double>{2, 3}));
}

TEST(MinMaxPartition, ImpossibleLimitNamesTheSmallestMemory) {
  std::vector<UnitCost> u(4, UnitCost{1, 8, 1});
  PartitionLimits lim;
  lim.memory_limit = 10;
  lim.inflight = {2, 2};
  // Best memory split: 2 | 2 units: 16 + 2 x 2 = 20 per device.
  const std::string e = error_of([&] { min_max_partition(u, 2, lim); });
  EXPECT_NE(e.find("smallest per-device memory that fits is 20 bytes"), std::string::npos) << e;
  lim.memory_limit = 20;
  EXPECT_EQ(min_max_partition(u, 2, lim), (std::vector<int>{0, 2, 4}));
  EXPECT_NE(error_of([&] { min_max_partition(u, 5); }).find("at most 4"), std::string::npos);
  EXPECT_FALSE(error_of([&] { min_max_partition(u, 0); }).empty());
  lim.inflight = {1};
  EXPECT_NE(error_of([&] { min_max_partition(u, 2, lim); }).find("in-flight"), std::string::npos);
}

TEST(MinMaxPartition, HugeModelsUseGreedyPacking) {
  // 4000 units on 8 stages (S·U² > 5e7): binary search + greedy packing. The slowest stage
  // is within one unit of the lower bound max(total / S, largest unit).
  NormalStream rng(7, 7);
  std::vector<UnitCost> u(4000);
  double total = 0, biggest = 0;
  for (UnitCost& c : u) {
    c.time = rng.next_uniform();
    total += c.time;
    biggest = std::max(biggest, c.time);
  }
  for (int S : {8, 3000}) {
    const std::vector<int> b = min_max_partition(u, S);
    ASSERT_EQ(static_cast<int>(b.size()), S + 1);
    for (int s = 0; s < S; ++s) ASSERT_LT(b[s], b[s + 1]);
    const auto t = stage_times(u, b);
    EXPECT_LE(*std::max_element(t.begin(), t.end()), std::max(total / S, biggest) + biggest) << S;
  }
}

TEST(BalancedPartition, SplitsBlocksWhereThatBalances) {
  // GPT-2 medium on 8 stages: the head is worth ~3.5 blocks of training FLOPs, which whole
  // blocks cannot balance; units can.
  const GptConfig med = preset("gpt2-350m");
  const auto parts = balanced_partition(med, 8);
  double hi = 0, sum = 0;
  for (const auto& p : parts) {
    const double c = stage_cost_in_layers(med, p);
    hi = std::max(hi, c);
    sum += c;
  }
  // Within 5% of a perfect split (the mean); whole blocks give 4 + 3.5 (head) vs 3.4.
  EXPECT_LT(hi / (sum / 8), 1.05) << format_layout(parts);
  EXPECT_NEAR(sum, med.layers + head_cost_in_layers(med) + embedding_cost_in_layers(med), 1e-9);
  EXPECT_TRUE(parts.back().has_head);
  // The executor's one-stage partition is the whole model.
  EXPECT_EQ(balanced_partition(med, 1)[0], partition_from_layers(med, {24})[0]);
  // Up to 2L + 2 stages: one unit each.
  const GptConfig tiny = preset("tiny");
  EXPECT_EQ(format_layout(balanced_partition(tiny, 6)), "E,0.5,0.5,0.5,0.5,H");
  EXPECT_NE(error_of([&] { balanced_partition(tiny, 7); }).find("at most 2L + 2 = 6"), std::string::npos);
}

TEST(BalancedPartition, ExecutorMemoryLimit) {
  // tiny, 1F1B on 3 stages, B = 8: the unlimited split is E+2 | H-ish; a limit below its
  // peak moves units and is respected; an impossible one names what would fit.
  const GptConfig tiny = preset("tiny");
  const auto units = exec_unit_costs(tiny, 8, 64);
  ASSERT_EQ(units.size(), 6u);
  EXPECT_DOUBLE_EQ(units[1].time, unit_flops(tiny, 1).training() * 8 * 64);
  EXPECT_DOUBLE_EQ(units[5].static_bytes, 16.0 * (2 * 64 + 50257 * 64));
  PartitionLimits lim;
  const auto free = balanced_partition(tiny, 3, units, lim);
  double peak = 0;
  for (double m : stage_memory(units, unit_bounds(free), lim)) peak = std::max(peak, m);
  lim.memory_limit = 0.9 * peak;
  std::vector<StagePartition> limited;
  const std::string e = error_of([&] { limited = balanced_partition(tiny, 3, units, lim); });
  if (e.empty()) {
    EXPECT_NE(format_layout(limited), format_layout(free));
    for (double m : stage_memory(units, unit_bounds(limited), lim)) EXPECT_LE(m, lim.memory_limit * (1 + 1e-12));
  } else {
    EXPECT_NE(e.find("smallest per-device memory that fits is"), std::string::npos) << e;
  }
  lim.memory_limit = 1e6;
  EXPECT_NE(error_of([&] { balanced_partition(tiny, 3, units, lim); }).find("smallest per-device memory"),
            std::string::npos);
}

TEST(ParamLayout, HalvesHoldTheirTensors) {
  const GptConfig cfg = blocks(2);
  const auto parts = parse_layout(cfg, "E+0.5,1,0.5+H");
  std::vector<std::string> names;
  for (const TensorInfo& t : make_param_layout(cfg, parts[1]).tensors) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"h.0.ln2w", "h.0.ln2b", "h.0.fcw", "h.0.fcb", "h.0.fcprojw",
                                             "h.0.fcprojb", "h.1.ln1w", "h.1.ln1b", "h.1.qkvw", "h.1.qkvb",
                                             "h.1.attprojw", "h.1.attprojb"}));
  // Same ids as in the whole model; every tensor exactly once over the stages.
  const ParamLayout whole = make_param_layout(cfg, partition_from_layers(cfg, {2})[0]);
  size_t count = 0;
  for (const auto& p : parts)
    for (const TensorInfo& t : make_param_layout(cfg, p).tensors) {
      ++count;
      const TensorInfo* w = whole.find(t.name);
      ASSERT_NE(w, nullptr) << t.name;
      EXPECT_EQ(w->global_id, t.global_id) << t.name;
      EXPECT_EQ(w->size, t.size) << t.name;
    }
  EXPECT_EQ(count, whole.tensors.size());
}

}  // namespace
}  // namespace paci
