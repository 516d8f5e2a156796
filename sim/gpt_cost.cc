#include "sim/gpt_cost.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

namespace paci {

namespace {

// Bytes per stored parameter of the weights held for the whole run: fp32; mixed bf16 with a
// persistent bf16 copy beside the fp32 master (Megatron's layout); bf16 autocast, where only
// the fp32 master persists and each forward casts the matmul weights it uses (PyTorch).
double weight_bytes_per_param(const std::string& precision) {
  return precision == "bf16" ? 2 + 4 : 4;
}

void check_precision(const std::string& precision) {
  if (precision != "bf16" && precision != "autocast" && precision != "fp32")
    throw CostError(fmt::format("--precision: '{}' is not bf16, autocast or fp32", precision));
}

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

}  // namespace

std::vector<std::string> gpt_model_names() {
  std::vector<std::string> names = preset_names();
  names.push_back("custom:...");
  return names;
}
std::vector<std::string> device_names() { return {"h100", "h200", "custom:..."}; }

GptConfig parse_gpt_model(std::string_view spec) {
  try {
    return parse_model(std::string(spec));
  } catch (const std::invalid_argument& e) {
    throw CostError(fmt::format("--model: {}", e.what()));
  }
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

std::vector<GptUnitCost> gpt_unit_costs(const GptCostOptions& o) {
  const GptConfig& g = o.model;
  const DeviceSpec& dev = o.device;
  try {
    validate(g);
  } catch (const std::invalid_argument& e) {
    throw CostError(fmt::format("--model: {}", e.what()));
  }
  check_precision(o.precision);
  if (o.micro_batch < 1) throw CostError(fmt::format("--mb-size must be >= 1 (got {})", o.micro_batch));
  const bool bf16 = o.precision != "fp32", autocast = o.precision == "autocast";
  const double e = bf16 ? 2 : 4;
  const double flops = (bf16 ? dev.peak_flops : dev.fp32_flops) * dev.efficiency;
  const double membw = dev.memory_bandwidth * 0.8;
  const double b = o.micro_batch, s = g.seq_len, h = g.channels, V = g.vocab_size;
  const double tok = b * s;
  const int U = num_units(g);
  std::vector<GptUnitCost> out(U);
  for (int u = 0; u < U; ++u) {
    GptUnitCost& c = out[u];
    const UnitFlops uf = unit_flops(g, u);
    const double gemm = tok * uf.gemm, attn = tok * uf.attention;
    double elem = 0;  // bytes of elementwise traffic, forward
    switch (unit_kind(g, u)) {
      case UnitKind::kEmbedding:
        elem = 3 * tok * h * e;
        c.f = elem / membw;
        c.i = 0;
        c.w = 2 * elem / membw;  // scatter-add into the embedding gradients
        c.activation_bytes = tok * h * e;
        c.freed_by_i = 0;
        break;
      case UnitKind::kAttention:
      case UnitKind::kMlp: {
        const bool att = unit_kind(g, u) == UnitKind::kAttention;
        elem = (att ? 8 : 12) * tok * h * e;
        c.f = (gemm + attn) / flops + elem / membw;
        c.i = (gemm + 2 * attn) / flops + 2 * elem / membw;
        c.w = gemm / flops;
        c.activation_bytes = (att ? 13 : 21) * tok * h * e / 2;
        c.freed_by_i = (att ? 9 : 11) * tok * h * e / 2;
        break;
      }
      case UnitKind::kHead: {
        // Fused cross-entropy (as llm.c does): the logits are written once, read once by the
        // loss, which writes the logits' gradient in their place during the backward.
        const double logits = tok * V * e;
        c.f = gemm / flops + 2 * logits / membw;
        c.i = gemm / flops + 2 * logits / membw;
        c.w = gemm / flops;
        c.activation_bytes = logits + tok * h * e;
        c.freed_by_i = logits;
        break;
      }
    }
    c.params = static_cast<double>(unit_parameters(g, u));
    c.stored_params = static_cast<double>(unit_parameters(g, u, /*stored=*/true));
    c.matmul_params = static_cast<double>(unit_matmul_parameters(g, u));
    if (autocast) {  // each forward's bf16 casts of the matmul weights stay until its I
      c.activation_bytes += 2 * c.matmul_params;
      c.freed_by_i += 2 * c.matmul_params;
    }
    c.static_bytes = c.stored_params * (weight_bytes_per_param(o.precision) + 4 + 8);
    c.flops = tok * uf.training();
  }
  return out;
}

std::vector<UnitCost> gpt_partition_costs(const GptCostOptions& o) {
  std::vector<UnitCost> out;
  for (const GptUnitCost& c : gpt_unit_costs(o)) out.push_back({c.f + c.i + c.w, c.static_bytes, c.activation_bytes});
  return out;
}

GptCost gpt_cost_model(const GptCostOptions& o) {
  const GptConfig& g = o.model;
  const DeviceSpec& dev = o.device;
  const std::vector<GptUnitCost> units = gpt_unit_costs(o);
  const int U = static_cast<int>(units.size());
  const std::string name = g.name.empty() ? describe(g) : g.name;
  GptCost out;
  if (!o.partition.empty()) {
    if (static_cast<int>(o.partition.size()) != o.stages)
      throw CostError(fmt::format("--partition has {} stages, the schedule has {}", o.partition.size(), o.stages));
    try {
      check_partition(g, o.partition);
    } catch (const std::invalid_argument& e) {
      throw CostError(fmt::format("--partition: {}", e.what()));
    }
    out.partition = o.partition;
  } else {
    const int S = o.stages;
    if (S < 1 || S > U)
      throw CostError(fmt::format("{} stages for {} of {} layers: it has {} units (the embedding, an attention and an "
                                  "MLP half per layer, the head), so at most {} stages", S, name, g.layers, U, U));
    try {
      out.partition = partition_from_units(g, min_max_partition(gpt_partition_costs(o), S, o.limits));
    } catch (const std::invalid_argument& e) {
      throw CostError(fmt::format("{} on {}: {}", name, dev.name, e.what()));
    }
  }
  out.layout = format_layout(out.partition);
  const bool bf16 = o.precision != "fp32";
  const double membw = dev.memory_bandwidth * 0.8;
  const double e = bf16 ? 2 : 4;
  const double tok = static_cast<double>(o.micro_batch) * g.seq_len;
  CostModel& c = out.cost;
  c.description = fmt::format("{} on {} ({}, {} x {} tokens per micro-batch, {:.0f}% of {:.0f} TFLOP/s)",
                              name, dev.name, o.precision, o.micro_batch, g.seq_len, 100 * dev.efficiency,
                              (bf16 ? dev.peak_flops : dev.fp32_flops) / 1e12);
  c.latency = dev.link_latency;
  c.bandwidth = dev.link_bandwidth;
  c.samples_per_microbatch = o.micro_batch;
  c.tokens_per_microbatch = tok;
  c.device_memory = dev.memory;
  c.memory_unit = "B";
  for (const StagePartition& p : out.partition) {
    GptUnitCost u;
    for (int k = p.first_unit(); k <= p.last_unit(); ++k) {
      const GptUnitCost& x = units[k];
      u.f += x.f, u.i += x.i, u.w += x.w;
      u.activation_bytes += x.activation_bytes, u.freed_by_i += x.freed_by_i;
      u.params += x.params, u.stored_params += x.stored_params, u.flops += x.flops;
      u.matmul_params += x.matmul_params;
    }
    StageCost sc;
    sc.f = u.f;
    sc.i = u.i;
    sc.w = u.w;
    sc.b = u.i + u.w;
    // fb (an overlapped F&B, DualPipeV) stays kFbNotGiven: f of this stage + b of the other.
    // DualPipe's overlap hides expert-parallel all-to-all behind compute; a dense GPT's
    // pipeline has none, and two compute-bound GEMM streams on one GPU take about as long
    // together as one after the other, so the model claims no overlap gain.
    sc.opt = u.stored_params * 30 / membw;
    sc.activation_bytes = u.activation_bytes;
    sc.freed_by_i = u.activation_bytes > 0 ? u.freed_by_i / u.activation_bytes : 0;
    sc.weight_bytes = u.stored_params * weight_bytes_per_param(o.precision);
    // Under `forward` a version in flight keeps what the input gradients read: a whole fp32
    // copy; the bf16 copy of the matmul weights; under autocast nothing more than the casts
    // every micro-batch keeps anyway (counted in its activations, for 1F1B as for PACI).
    if (o.precision == "bf16") sc.version_bytes = 2 * u.matmul_params;
    if (o.precision == "autocast") sc.version_bytes = 0;
    sc.grad_bytes = u.stored_params * 4;
    sc.optimizer_bytes = u.stored_params * 8;
    sc.send_bytes = sc.grad_send_bytes = tok * g.channels * e;
    c.stages.push_back(sc);
    out.layers_per_stage.push_back(p.num_layers());
    out.blocks_per_stage.push_back(p.num_halves() / 2.0);
    out.params_per_stage.push_back(u.params);
    out.flops_per_stage.push_back(u.flops);
  }
  c.description += ", partition " + out.layout;
  return out;
}

}  // namespace paci
