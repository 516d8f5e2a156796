#include "exec/model/partition.h"

#include "schedules/files.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

namespace paci {
namespace {

[[noreturn]] void fail(const std::string& why) { throw std::invalid_argument("partition: " + why); }

// The pieces of `text` between `sep`s (n separators give n + 1 pieces, empty ones included).
std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  for (size_t at = 0;;) {
    const size_t next = text.find(sep, at);
    out.push_back(text.substr(at, next == std::string::npos ? std::string::npos : next - at));
    if (next == std::string::npos) return out;
    at = next + 1;
  }
}

std::string bytes_text(double b) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%.6g bytes (%.3f GiB)", b, b / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

std::string blocks_text(int halves) {
  return std::to_string(halves / 2) + (halves % 2 ? ".5" : "");
}

// For very large models without a memory limit (S·U² > 5e7, thousands of blocks): binary
// search on the slowest stage's time with greedy packing, times clamped at 0; exact for the
// min-max (not the sum-of-squares tie-break).
std::vector<int> greedy_min_max(const std::vector<UnitCost>& units, int S) {
  const int U = static_cast<int>(units.size());
  std::vector<double> t(U);
  double lo = 0, hi = 0;
  for (int u = 0; u < U; ++u) {
    t[u] = std::max(0.0, units[u].time);
    lo = std::max(lo, t[u]);
    hi += t[u];
  }
  auto pack = [&](double cap) {
    std::vector<int> b = {0};
    double run = 0;
    for (int u = 0; u < U; ++u) {
      if (u > b.back() && run + t[u] > cap) b.push_back(u), run = 0;
      run += t[u];
    }
    b.push_back(U);
    return b;
  };
  if (static_cast<int>(pack(lo).size()) - 1 > S) {
    for (int it = 0; it < 200 && hi - lo > 1e-12 * hi; ++it) {
      const double mid = 0.5 * (lo + hi);
      (static_cast<int>(pack(mid).size()) - 1 <= S ? hi : lo) = mid;
    }
  } else {
    hi = lo;
  }
  std::vector<int> b = pack(hi);
  while (static_cast<int>(b.size()) - 1 < S) {  // split the stage with the most units
    int best = 0;
    for (int s = 1; s + 1 < static_cast<int>(b.size()); ++s)
      if (b[s + 1] - b[s] > b[best + 1] - b[best]) best = s;
    b.insert(b.begin() + best + 1, b[best] + (b[best + 1] - b[best]) / 2);
  }
  return b;
}

}  // namespace

StagePartition stage_from_units(const GptConfig& cfg, int first, int last) {
  const int U = num_units(cfg), L = cfg.layers;
  if (first < 0 || last >= U || first > last)
    fail("unit range [" + std::to_string(first) + ", " + std::to_string(last) + "] is not inside the model's " +
         std::to_string(U) + " units");
  StagePartition p;
  p.has_embedding = first == 0;
  p.has_head = last == U - 1;
  const int a = std::max(first, 1), b = std::min(last, U - 2);  // block units
  if (a > b) {
    p.first_layer = p.has_embedding ? 0 : L;
    p.last_layer = p.first_layer - 1;
    return p;
  }
  p.first_layer = unit_layer(a);
  p.last_layer = unit_layer(b);
  p.starts_with_mlp = a % 2 == 0;
  p.ends_with_attention = b % 2 == 1;
  return p;
}

std::vector<StagePartition> partition_from_units(const GptConfig& cfg, const std::vector<int>& bounds) {
  validate(cfg);
  const int U = num_units(cfg);
  if (bounds.size() < 2) fail("need at least one stage");
  if (bounds.front() != 0 || bounds.back() != U)
    fail("unit boundaries must run from 0 to " + std::to_string(U));
  std::vector<StagePartition> parts;
  for (size_t s = 0; s + 1 < bounds.size(); ++s) {
    if (bounds[s + 1] <= bounds[s]) fail("stage " + std::to_string(s) + " holds no unit");
    parts.push_back(stage_from_units(cfg, bounds[s], bounds[s + 1] - 1));
  }
  return parts;
}

std::vector<int> unit_bounds(const std::vector<StagePartition>& parts) {
  std::vector<int> b;
  for (const StagePartition& p : parts) b.push_back(p.first_unit());
  if (!parts.empty()) b.push_back(parts.back().last_unit() + 1);
  return b;
}

void check_partition(const GptConfig& cfg, const std::vector<StagePartition>& parts) {
  const int U = num_units(cfg);
  if (parts.empty()) fail("need at least one stage");
  int next = 0;
  for (size_t s = 0; s < parts.size(); ++s) {
    const StagePartition& p = parts[s];
    const int a = p.first_unit(), b = p.last_unit();
    if (a != next || b < a || b >= U || stage_from_units(cfg, a, b) != p)
      fail("stage " + std::to_string(s) + " does not continue a partition of the model's " + std::to_string(U) +
           " units (expected it to start at unit " + std::to_string(next) + ")");
    next = b + 1;
  }
  if (next != U) fail("the stages cover " + std::to_string(next) + " of " + std::to_string(U) + " units");
}

// ---- layout text ----

std::vector<StagePartition> parse_layout(const GptConfig& cfg, const std::string& text) {
  validate(cfg);
  const int L = cfg.layers;
  const std::vector<std::string> entries = split(text, ',');
  const int S = static_cast<int>(entries.size());
  const std::string grammar = "a stage is E, H, a number of blocks (a multiple of 0.5) or parts joined by '+'";
  std::vector<int> halves(S, 0);
  for (int s = 0; s < S; ++s) {
    const std::string& e = entries[s];
    const std::string where = "entry " + std::to_string(s + 1) + " '" + excerpt(e) + "'";
    if (e.empty()) fail(where + " is empty: " + grammar);
    const std::vector<std::string> parts = split(e, '+');
    for (size_t k = 0; k < parts.size(); ++k) {
      const std::string& p = parts[k];
      if (p == "E" || p == "e") {
        if (s != 0 || k != 0)
          fail(where + ": E (the embedding) may only start the first stage; it is always on the first stage");
        continue;
      }
      if (p == "H" || p == "h") {
        if (s != S - 1 || k + 1 != parts.size())
          fail(where + ": H (the head) may only end the last stage; it is always on the last stage");
        continue;
      }
      // BLOCKS: digits, optionally '.' and digits; a multiple of 0.5.
      const size_t dot = p.find('.');
      const std::string ip = p.substr(0, dot), fp = dot == std::string::npos ? "" : p.substr(dot + 1);
      const bool digits = !ip.empty() && ip.size() <= 6 && ip.find_first_not_of("0123456789") == std::string::npos &&
                          (dot == std::string::npos ||
                           (!fp.empty() && fp.find_first_not_of("0123456789") == std::string::npos));
      if (!digits) fail(where + ": '" + excerpt(p) + "' is not E, H or a number of blocks; " + grammar);
      const std::string frac = fp.substr(0, fp.find_last_not_of('0') + 1);  // strip trailing zeros
      if (!(frac.empty() || frac == "5"))
        fail(where + ": " + excerpt(p) + " blocks is not a multiple of 0.5 (a stage boundary may fall between a block's "
                     "attention and MLP halves, nowhere else)");
      halves[s] += 2 * std::stoi(ip) + (frac == "5" ? 1 : 0);  // <= 2e6 + 1: no overflow
      if (halves[s] > 2 * L)
        fail(where + " holds " + blocks_text(halves[s]) + " blocks but the model has " + std::to_string(L));
    }
    if (halves[s] == 0 && s != 0 && s != S - 1)
      fail(where + " holds no block: a middle stage must hold at least half a block (only the first stage may "
                   "be embedding-only and the last head-only)");
    if (halves[s] > 2 * L)
      fail(where + " holds " + blocks_text(halves[s]) + " blocks but the model has " + std::to_string(L));
  }
  long long sum = 0;  // entries <= 2L each, but there may be many
  for (int h : halves) sum += h;
  if (sum != 2 * L)
    fail("blocks sum to " + std::to_string(sum / 2) + (sum % 2 ? ".5" : "") + " but the model has " + std::to_string(L) + " blocks (layout '" +
         excerpt(text) + "')");
  // Half k (1-based) of the model is unit k.
  std::vector<int> bounds = {0};
  int run = 0;
  for (int s = 0; s < S; ++s) {
    run += halves[s];
    bounds.push_back(s + 1 == S ? num_units(cfg) : run + 1);
  }
  if (S > 1 && bounds[1] <= 0) bounds[1] = 1;  // embedding-only first stage: unit 0 alone
  return partition_from_units(cfg, bounds);
}

std::string format_layout(const std::vector<StagePartition>& parts) {
  std::string out;
  for (size_t s = 0; s < parts.size(); ++s) {
    const StagePartition& p = parts[s];
    std::string e;
    if (p.has_embedding) e = "E";
    if (p.num_halves() > 0) e += (e.empty() ? "" : "+") + blocks_text(p.num_halves());
    if (p.has_head) e += (e.empty() ? "" : "+") + std::string("H");
    if (e.empty()) e = "0";  // not a valid stage; keeps the output readable
    out += (s ? "," : "") + e;
  }
  return out;
}

// ---- the partitioner ----

std::vector<double> stage_memory(const std::vector<UnitCost>& units, const std::vector<int>& bounds,
                                 const PartitionLimits& limits) {
  const int S = static_cast<int>(bounds.size()) - 1;
  std::vector<double> mem(std::max(S, 0), 0.0);
  for (int s = 0; s < S; ++s) {
    double st = 0, act = 0;
    for (int u = bounds[s]; u < bounds[s + 1]; ++u) st += units[u].static_bytes, act += units[u].activation_bytes;
    const double inflight = limits.inflight.empty() ? S - s : limits.inflight[s];
    mem[s] = st + inflight * act;
  }
  return mem;
}

std::vector<int> min_max_partition(const std::vector<UnitCost>& units, int S, const PartitionLimits& limits) {
  const int U = static_cast<int>(units.size());
  if (S < 1) fail("stages must be >= 1 (got " + std::to_string(S) + ")");
  if (S > U)
    fail(std::to_string(S) + " stages for " + std::to_string(U) + " units: at most " + std::to_string(U) +
         " stages (every stage needs a unit)");
  if (!limits.inflight.empty() && static_cast<int>(limits.inflight.size()) != S)
    fail("in-flight micro-batches given for " + std::to_string(limits.inflight.size()) + " stages, need " +
         std::to_string(S));
  if (!(limits.memory_limit >= 0)) fail("the memory limit must be >= 0");
  std::vector<double> pt(U + 1, 0), ps(U + 1, 0), pa(U + 1, 0);
  for (int u = 0; u < U; ++u) {
    pt[u + 1] = pt[u] + units[u].time;
    ps[u + 1] = ps[u] + units[u].static_bytes;
    pa[u + 1] = pa[u] + units[u].activation_bytes;
  }
  auto inflight = [&](int s) { return limits.inflight.empty() ? static_cast<double>(S - s) : limits.inflight[s]; };
  auto mem = [&](int s, int j, int k) { return (ps[k] - ps[j]) + inflight(s) * (pa[k] - pa[j]); };
  const double limit = limits.memory_limit;
  auto fits = [&](int s, int j, int k) { return limit <= 0 || mem(s, j, k) <= limit * (1 + 1e-12); };
  const double inf = std::numeric_limits<double>::infinity();

  // kind 0: minimise the max stage time; 1: minimise the sum of squares under cap;
  // 2: minimise the max stage memory (for the error message).
  auto solve = [&](int kind, double cap, std::vector<int>* bounds) {
    // best[s][k]: objective when stages 0..s-1 hold units 0..k-1.
    std::vector<std::vector<double>> best(S + 1, std::vector<double>(U + 1, inf));
    std::vector<std::vector<int>> cut(S + 1, std::vector<int>(U + 1, -1));
    best[0][0] = 0;
    for (int s = 1; s <= S; ++s) {
      // Stages s..S-1 still need a unit each.
      for (int k = s; k <= U - (S - s); ++k) {
        for (int j = s - 1; j < k; ++j) {
          if (best[s - 1][j] == inf) continue;
          double v;
          if (kind == 2) {
            v = std::max(best[s - 1][j], mem(s - 1, j, k));
          } else {
            if (!fits(s - 1, j, k)) continue;
            const double c = pt[k] - pt[j];
            if (kind == 0) {
              v = std::max(best[s - 1][j], c);
            } else {
              if (c > cap) continue;
              v = best[s - 1][j] + c * c;
            }
          }
          if (v < best[s][k]) best[s][k] = v, cut[s][k] = j;
        }
      }
    }
    if (bounds && best[S][U] < inf) {
      bounds->assign(S + 1, U);
      for (int s = S; s >= 1; --s) (*bounds)[s - 1] = cut[s][(*bounds)[s]];
    }
    return best[S][U];
  };
  if (limit <= 0 && static_cast<double>(S) * U * U > 5e7) return greedy_min_max(units, S);
  const double max_time = solve(0, inf, nullptr);
  if (max_time == inf) {
    std::vector<int> b;
    const double need = solve(2, inf, &b);
    fail("no split of " + std::to_string(U) + " units into " + std::to_string(S) + " stages fits in " +
         bytes_text(limit) + " per device (weights, gradients, optimizer state and in-flight activations); the "
         "smallest per-device memory that fits is " + bytes_text(need));
  }
  std::vector<int> bounds;
  const double cap = max_time + std::abs(max_time) * 1e-9;
  solve(1, cap, &bounds);
  return bounds;
}

// ---- the executor's costs ----

std::vector<UnitCost> flop_unit_costs(const GptConfig& cfg) {
  std::vector<UnitCost> u(num_units(cfg));
  for (int k = 0; k < num_units(cfg); ++k) u[k].time = unit_flops(cfg, k).training();
  return u;
}

std::vector<UnitCost> exec_unit_costs(const GptConfig& cfg, int micro_batch, int seq_len) {
  validate(cfg);
  const double T = seq_len > 0 ? seq_len : cfg.seq_len, tok = static_cast<double>(micro_batch) * T;
  const double C = cfg.channels, V = cfg.vocab_size, NH = cfg.heads;
  std::vector<UnitCost> u(num_units(cfg));
  for (int k = 0; k < num_units(cfg); ++k) {
    u[k].time = unit_flops(cfg, k, static_cast<int>(T)).training() * tok;
    u[k].static_bytes = 16.0 * static_cast<double>(unit_parameters(cfg, k, /*stored=*/true));
    double floats = 0;
    switch (unit_kind(cfg, k)) {
      case UnitKind::kEmbedding:
        floats = C + 1;
        break;
      case UnitKind::kAttention:
        floats = 12 * C + NH * T + 2;
        break;
      case UnitKind::kMlp:
        floats = 15 * C + 2;
        break;
      case UnitKind::kHead:
        floats = V + 2 * C + 4;
        break;
    }
    u[k].activation_bytes = 4.0 * floats * tok;
  }
  return u;
}

namespace {
double block_flops(const GptConfig& cfg) {
  if (cfg.layers == 0) {
    GptConfig one = cfg;
    one.layers = 1;
    return unit_flops(one, 1).training() + unit_flops(one, 2).training();
  }
  return unit_flops(cfg, 1).training() + unit_flops(cfg, 2).training();
}
}  // namespace

double embedding_cost_in_layers(const GptConfig& cfg) {
  return unit_flops(cfg, 0).training() / block_flops(cfg);
}

double head_cost_in_layers(const GptConfig& cfg) {
  return unit_flops(cfg, num_units(cfg) - 1).training() / block_flops(cfg);
}

double stage_cost_in_layers(const GptConfig& cfg, const StagePartition& stage) {
  double c = 0;
  for (int u = stage.first_unit(); u <= stage.last_unit(); ++u) c += unit_flops(cfg, u).training();
  return c / block_flops(cfg);
}

std::vector<StagePartition> balanced_partition(const GptConfig& cfg, int stages, const std::vector<UnitCost>& units,
                                               const PartitionLimits& limits) {
  validate(cfg);
  const int U = num_units(cfg);
  if (static_cast<int>(units.size()) != U)
    fail(std::to_string(units.size()) + " unit costs for a model of " + std::to_string(U) + " units");
  if (stages > U)
    fail(std::to_string(stages) + " stages for a model with " + std::to_string(cfg.layers) + " layers; at most 2L + 2 = " +
         std::to_string(U) + " stages (units: the embedding, an attention and an MLP half per block, the head)");
  return partition_from_units(cfg, min_max_partition(units, stages, limits));
}

std::vector<StagePartition> balanced_partition(const GptConfig& cfg, int stages, const PartitionLimits& limits) {
  validate(cfg);
  return balanced_partition(cfg, stages, flop_unit_costs(cfg), limits);
}

std::vector<StagePartition> partition_from_layers(const GptConfig& cfg,
                                                  const std::vector<int>& layers_per_stage) {
  validate(cfg);
  const int S = static_cast<int>(layers_per_stage.size());
  if (S == 0) fail("need at least one stage");
  int sum = 0;
  for (int s = 0; s < S; ++s) {
    const int n = layers_per_stage[s];
    if (n < 0) fail("stage " + std::to_string(s) + " has " + std::to_string(n) + " layers; counts must be >= 0");
    if (n == 0 && s != 0 && s != S - 1)
      fail("stage " + std::to_string(s) +
           " has 0 layers; only the first (embedding) or last (head) stage may be without layers");
    sum += n;
  }
  if (sum != cfg.layers)
    fail("layer counts sum to " + std::to_string(sum) + " but the model has " + std::to_string(cfg.layers) +
         " layers");
  std::vector<StagePartition> parts(S);
  int next = 0;
  for (int s = 0; s < S; ++s) {
    parts[s].first_layer = next;
    parts[s].last_layer = next + layers_per_stage[s] - 1;
    parts[s].has_embedding = (s == 0);
    parts[s].has_head = (s == S - 1);
    next += layers_per_stage[s];
  }
  return parts;
}

}  // namespace paci
