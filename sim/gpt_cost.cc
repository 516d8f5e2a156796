#include "sim/gpt_cost.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

namespace paci {
namespace {

// KEY=VALUE,... after "custom:"; numbers only.
std::map<std::string, double> parse_kv(std::string_view text, const std::string& flag,
                                       const std::vector<std::string>& allowed) {
  std::map<std::string, double> out;
  std::string s(text);
  size_t at = 0;
  while (at < s.size()) {
    size_t comma = s.find(',', at);
    std::string item = s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    at = comma == std::string::npos ? s.size() : comma + 1;
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    std::string keys;
    for (const auto& k : allowed) keys += (keys.empty() ? "" : ", ") + k;
    if (eq == std::string::npos || std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      throw CostError(fmt::format("{}: '{}' is not KEY=VALUE with KEY one of {}", flag, item, keys));
    try {
      size_t used = 0;
      double v = std::stod(item.substr(eq + 1), &used);
      if (used != item.size() - eq - 1 || !(v >= 0)) throw std::invalid_argument("bad");
      out[key] = v;
    } catch (const std::exception&) {
      throw CostError(fmt::format("{}: {}: '{}' is not a number >= 0", flag, key, item.substr(eq + 1)));
    }
  }
  return out;
}

struct Unit {  // a slice of the model: embedding, one layer, or the head
  double f = 0, i = 0, w = 0;           // seconds
  double act = 0, act_freed_by_i = 0;   // bytes per micro-batch
  double params = 0;
};

}  // namespace

double GptShape::params() const {
  double h = d_model;
  double layer = 12 * h * h + 13 * h;
  return layers * layer + static_cast<double>(vocab) * h + seq * h + 2 * h +
         (tied ? 0 : static_cast<double>(vocab) * h);
}

std::vector<std::string> gpt_model_names() {
  return {"gpt2-124m", "gpt2-350m", "gpt2-774m", "gpt2-1558m", "custom:..."};
}
std::vector<std::string> device_names() { return {"h100", "h200", "custom:..."}; }

GptShape parse_gpt_model(std::string_view spec) {
  auto preset = [&](int L, int d, int a) {
    GptShape c;
    c.name = std::string(spec);
    c.layers = L, c.d_model = d, c.heads = a, c.seq = 1024, c.vocab = 50257;
    return c;
  };
  if (spec == "gpt2-124m" || spec == "gpt2") return preset(12, 768, 12);
  if (spec == "gpt2-350m" || spec == "gpt2-medium") return preset(24, 1024, 16);
  if (spec == "gpt2-774m" || spec == "gpt2-large") return preset(36, 1280, 20);
  if (spec == "gpt2-1558m" || spec == "gpt2-xl") return preset(48, 1600, 25);
  if (spec.rfind("custom:", 0) == 0) {
    auto kv = parse_kv(spec.substr(7), "--model", {"layers", "d", "heads", "seq", "vocab", "tied"});
    for (const char* k : {"layers", "d", "heads", "seq", "vocab"})
      if (!kv.count(k) || kv[k] < 1)
        throw CostError(fmt::format("--model custom: needs {}=N >= 1 (keys: layers, d, heads, seq, vocab, tied)", k));
    GptShape c;
    c.name = "custom";
    c.layers = static_cast<int>(kv["layers"]);
    c.d_model = static_cast<int>(kv["d"]);
    c.heads = static_cast<int>(kv["heads"]);
    c.seq = static_cast<int>(kv["seq"]);
    c.vocab = static_cast<int>(kv["vocab"]);
    c.tied = kv.count("tied") && kv["tied"] != 0;
    if (c.d_model % c.heads != 0)
      throw CostError(fmt::format("--model custom: d={} must be a multiple of heads={}", c.d_model, c.heads));
    return c;
  }
  throw CostError(fmt::format("--model: unknown model '{}' (allowed: gpt2-124m, gpt2-350m, gpt2-774m, "
                              "gpt2-1558m, custom:layers=L,d=D,heads=H,seq=T,vocab=V)", spec));
}

DeviceSpec parse_device(std::string_view spec) {
  DeviceSpec d;
  d.name = std::string(spec);
  d.peak_flops = 989e12;
  d.fp32_flops = 494e12;
  d.link_bandwidth = 0.8 * 450e9;
  d.link_latency = 10e-6;
  if (spec == "h100") {
    d.memory_bandwidth = 3.35e12;
    d.memory = 80e9;
    return d;
  }
  if (spec == "h200") {
    d.memory_bandwidth = 4.8e12;
    d.memory = 141e9;
    return d;
  }
  if (spec.rfind("custom:", 0) == 0) {
    auto kv = parse_kv(spec.substr(7), "--device",
                       {"flops", "fp32flops", "membw", "linkbw", "mem", "eff", "latency"});
    for (const char* k : {"flops", "membw", "linkbw", "mem"})
      if (!kv.count(k) || kv[k] <= 0)
        throw CostError(fmt::format("--device custom: needs {}=X > 0 (keys: flops, fp32flops, membw, linkbw, "
                                    "mem, eff, latency)", k));
    d.name = "custom";
    d.peak_flops = kv["flops"];
    d.fp32_flops = kv.count("fp32flops") ? kv["fp32flops"] : d.peak_flops / 2;
    d.memory_bandwidth = kv["membw"];
    d.link_bandwidth = kv["linkbw"];
    d.memory = kv["mem"];
    if (kv.count("eff")) d.efficiency = kv["eff"];
    if (kv.count("latency")) d.link_latency = kv["latency"];
    if (!(d.efficiency > 0 && d.efficiency <= 1))
      throw CostError(fmt::format("--device custom: eff must be in (0, 1] (got {})", d.efficiency));
    return d;
  }
  throw CostError(fmt::format("--device: unknown device '{}' (allowed: h100, h200, "
                              "custom:flops=F,membw=B,linkbw=L,mem=M[,eff=E,latency=S,fp32flops=F])", spec));
}

GptCost gpt_cost_model(const GptCostOptions& o) {
  const GptShape& g = o.model;
  const DeviceSpec& dev = o.device;
  const int S = o.stages, L = g.layers;
  if (o.precision != "bf16" && o.precision != "fp32")
    throw CostError(fmt::format("--precision: '{}' is not bf16 or fp32", o.precision));
  if (o.micro_batch < 1) throw CostError(fmt::format("--mb-size must be >= 1 (got {})", o.micro_batch));
  if (S < 1 || S > L)
    throw CostError(fmt::format("{} stages for {} layers of {}: every stage needs at least one layer "
                                "(use at most {} stages)", S, L, g.name, L));
  const bool bf16 = o.precision == "bf16";
  const double e = bf16 ? 2 : 4;
  const double flops = (bf16 ? dev.peak_flops : dev.fp32_flops) * dev.efficiency;
  const double membw = dev.memory_bandwidth * 0.8;
  const double b = o.micro_batch, s = g.seq, h = g.d_model, V = g.vocab;
  const double tok = b * s;

  Unit layer;
  {
    double gemm = 24 * tok * h * h, attn = 4 * tok * s * h, elem = 20 * tok * h * e;
    layer.f = (gemm + attn) / flops + elem / membw;
    layer.i = (gemm + 2 * attn) / flops + 2 * elem / membw;
    layer.w = gemm / flops;
    layer.act = 34 * tok * h * e / 2;
    layer.act_freed_by_i = 20 * tok * h * e / 2;
    layer.params = 12 * h * h + 13 * h;
  }
  Unit embed;
  {
    double elem = 3 * tok * h * e;
    embed.f = elem / membw;
    embed.i = 0;
    embed.w = 2 * elem / membw;  // scatter-add into the embedding gradients
    embed.act = tok * h * e;
    embed.act_freed_by_i = 0;
    embed.params = V * h + s * h;
  }
  Unit head;
  {
    // Fused cross-entropy (as llm.c does): the logits are written once, read once by the
    // loss, which writes the logits' gradient in their place during the backward.
    double gemm = 2 * tok * h * V, logits = tok * V * e;
    head.f = gemm / flops + 2 * logits / membw;
    head.i = gemm / flops + 2 * logits / membw;
    head.w = gemm / flops;
    head.act = logits + tok * h * e;
    head.act_freed_by_i = logits;
    head.params = V * h + 2 * h;  // a tied head still holds its own copy on the last stage
  }

  // Contiguous split minimising the slowest stage's F + B: dp over layers.
  auto cost = [&](int first, int last, int stage) {  // layers [first, last)
    double c = (last - first) * (layer.f + layer.i + layer.w);
    if (stage == 0) c += embed.f + embed.i + embed.w;
    if (stage == S - 1) c += head.f + head.i + head.w;
    return c;
  };
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> dp(S + 1, std::vector<double>(L + 1, inf));
  std::vector<std::vector<int>> cut(S + 1, std::vector<int>(L + 1, -1));
  dp[0][0] = 0;
  for (int k = 1; k <= S; ++k)
    for (int j = k; j <= L - (S - k); ++j)
      for (int i = k - 1; i < j; ++i) {
        if (dp[k - 1][i] == inf) continue;
        double v = std::max(dp[k - 1][i], cost(i, j, k - 1));
        if (v < dp[k][j]) dp[k][j] = v, cut[k][j] = i;
      }
  std::vector<int> bounds(S + 1, L);
  for (int k = S; k > 0; --k) bounds[k - 1] = cut[k][bounds[k]];

  GptCost out;
  CostModel& c = out.cost;
  c.description = fmt::format("{} on {} ({}, {} x {} tokens per micro-batch, {:.0f}% of {:.0f} TFLOP/s)",
                              g.name, dev.name, o.precision, o.micro_batch, g.seq, 100 * dev.efficiency,
                              (bf16 ? dev.peak_flops : dev.fp32_flops) / 1e12);
  c.latency = dev.link_latency;
  c.bandwidth = dev.link_bandwidth;
  c.samples_per_microbatch = b;
  c.tokens_per_microbatch = tok;
  c.device_memory = dev.memory;
  c.memory_unit = "B";
  for (int st = 0; st < S; ++st) {
    Unit u;
    int nl = bounds[st + 1] - bounds[st];
    auto add = [&](const Unit& x, double times) {
      u.f += times * x.f, u.i += times * x.i, u.w += times * x.w;
      u.act += times * x.act, u.act_freed_by_i += times * x.act_freed_by_i, u.params += times * x.params;
    };
    add(layer, nl);
    if (st == 0) add(embed, 1);
    if (st == S - 1) add(head, 1);
    StageCost sc;
    sc.f = u.f;
    sc.i = u.i;
    sc.w = u.w;
    sc.b = u.i + u.w;
    sc.opt = u.params * 30 / membw;
    sc.activation_bytes = u.act;
    sc.freed_by_i = u.act > 0 ? u.act_freed_by_i / u.act : 0;
    sc.weight_bytes = u.params * (bf16 ? 2 + 4 : 4);
    sc.grad_bytes = u.params * 4;
    sc.optimizer_bytes = u.params * 8;
    sc.send_bytes = sc.grad_send_bytes = tok * h * e;
    c.stages.push_back(sc);
    out.layers_per_stage.push_back(nl);
    out.params_per_stage.push_back(u.params);
  }
  std::string split;
  for (int nl : out.layers_per_stage) split += (split.empty() ? "" : ",") + std::to_string(nl);
  c.description += ", layers per stage " + split;
  return out;
}

}  // namespace paci
