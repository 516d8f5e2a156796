#include "sim/cost.h"

#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "schedules/files.h"

namespace paci {
namespace {

using nlohmann::json;

// Stage fields as given (unset = take the default), before b/i/w are reconciled.
struct Partial {
  std::map<std::string, double> v;
};

const std::vector<std::string>& stage_fields() {
  static const std::vector<std::string> f = {
      "f", "b", "i", "w", "opt", "fb", "activation_bytes", "freed_by_i", "weight_bytes",
      "grad_bytes", "optimizer_bytes", "workspace_bytes", "copy", "send_bytes", "grad_send_bytes", "version_bytes"};
  return f;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Fills a StageCost from the given fields over `base`; where names the fields in errors.
StageCost resolve(const Partial& p, const StageCost& base, bool base_split_given,
                  const std::string& where) {
  StageCost c = base;
  auto get = [&](const char* k) -> std::optional<double> {
    auto it = p.v.find(k);
    if (it == p.v.end()) return std::nullopt;
    return it->second;
  };
  if (auto x = get("f")) c.f = *x;
  if (auto x = get("opt")) c.opt = *x;
  if (auto x = get("fb")) c.fb = *x;
  if (auto x = get("activation_bytes")) c.activation_bytes = *x;
  if (auto x = get("freed_by_i")) c.freed_by_i = *x;
  if (auto x = get("weight_bytes")) c.weight_bytes = *x;
  if (auto x = get("grad_bytes")) c.grad_bytes = *x;
  if (auto x = get("optimizer_bytes")) c.optimizer_bytes = *x;
  if (auto x = get("workspace_bytes")) c.workspace_bytes = *x;
  if (auto x = get("copy")) c.copy = *x;
  if (auto x = get("send_bytes")) c.send_bytes = *x;
  if (auto x = get("grad_send_bytes")) c.grad_send_bytes = *x;
  if (auto x = get("version_bytes")) c.version_bytes = *x;
  auto b = get("b"), i = get("i"), w = get("w");
  if (b || i || w) {
    if (b && i && w) {
      if (std::fabs(*b - (*i + *w)) > 1e-9 * std::max(1.0, *b))
        throw CostError(fmt::format("{}: b = {} must equal i + w = {} (a split backward is I then W)",
                                    where, *b, *i + *w));
      c.b = *b, c.i = *i, c.w = *w;
    } else if (i && w) {
      c.i = *i, c.w = *w, c.b = *i + *w;
    } else if (b && i) {
      c.b = *b, c.i = *i, c.w = *b - *i;
    } else if (b && w) {
      c.b = *b, c.w = *w, c.i = *b - *w;
    } else if (b) {
      c.b = *b, c.i = *b / 2, c.w = *b / 2;
    } else if (i) {
      c.i = *i, c.w = base_split_given ? base.w : c.b - *i, c.b = c.i + c.w;
    } else {
      c.w = *w, c.i = base_split_given ? base.i : c.b - *w, c.b = c.i + c.w;
    }
    if (c.i < 0 || c.w < 0)
      throw CostError(fmt::format("{}: the backward split gives i = {}, w = {}: both must be >= 0 "
                                  "(b = i + w)", where, c.i, c.w));
  }
  return c;
}

void check_stage(const StageCost& c, const std::string& where) {
  const std::pair<const char*, double> fields[] = {
      {"f", c.f}, {"b", c.b}, {"i", c.i}, {"w", c.w}, {"opt", c.opt},
      {"activation_bytes", c.activation_bytes}, {"weight_bytes", c.weight_bytes},
      {"grad_bytes", c.grad_bytes}, {"optimizer_bytes", c.optimizer_bytes},
      {"workspace_bytes", c.workspace_bytes}, {"copy", c.copy}, {"send_bytes", c.send_bytes}, {"grad_send_bytes", c.grad_send_bytes}};
  for (const auto& [name, v] : fields)
    if (!(v >= 0) || !std::isfinite(v))
      throw CostError(fmt::format("{}.{}: must be a finite number >= 0 (got {})", where, name, v));
  if (c.fb != kFbNotGiven && (!(c.fb >= 0) || !std::isfinite(c.fb)))
    throw CostError(fmt::format("{}.fb: must be a finite number >= 0 (got {})", where, c.fb));
  if (c.version_bytes != kWholeCopy && (!(c.version_bytes >= 0) || !std::isfinite(c.version_bytes)))
    throw CostError(fmt::format("{}.version_bytes: must be a finite number >= 0 (got {})", where, c.version_bytes));
  if (!(c.freed_by_i >= 0 && c.freed_by_i <= 1))
    throw CostError(fmt::format("{}.freed_by_i: must be in [0, 1] (got {})", where, c.freed_by_i));
}

}  // namespace

double CostModel::duration(const Action& a) const {
  const StageCost& c = stage(a.stage);
  switch (a.kind) {
    case ActionKind::F: return c.f;
    case ActionKind::B: return c.b;
    case ActionKind::I: return c.i;
    case ActionKind::W: return c.w;
    case ActionKind::OPT: return c.opt;
    case ActionKind::FB: return c.fb >= 0 ? c.fb : c.f + stage(a.stage_b).b;
  }
  return 0;
}

void CostModel::check(int n) const {
  const std::string src = description.empty() ? "cost model" : description;
  if (stages.empty()) throw CostError(src + ": no stage costs");
  if (stages.size() != 1 && static_cast<int>(stages.size()) != n)
    throw CostError(fmt::format("{}: has costs for {} stages but the schedule has {} (give one "
                                "entry per stage, or one for all)", src, stages.size(), n));
  for (size_t s = 0; s < stages.size(); ++s) check_stage(stages[s], fmt::format("{}: stages[{}]", src, s));
  if (!(latency >= 0) || !std::isfinite(latency))
    throw CostError(fmt::format("{}: latency must be a finite number >= 0 seconds (got {})", src, latency));
  if (!(bandwidth >= 0) || !std::isfinite(bandwidth))
    throw CostError(fmt::format("{}: bandwidth must be >= 0 bytes/s, 0 = unlimited (got {})", src, bandwidth));
  if (!(samples_per_microbatch > 0))
    throw CostError(fmt::format("{}: samples_per_microbatch must be > 0 (got {})", src, samples_per_microbatch));
}

double extra_copy_bytes(const StageCost& c, WeightPolicy policy) {
  switch (policy) {
    case WeightPolicy::kStash:
    case WeightPolicy::kDoubleBuffer: return c.weight_bytes;
    case WeightPolicy::kForward: return c.version_bytes == kWholeCopy ? c.weight_bytes : c.version_bytes;
    case WeightPolicy::kCurrent:
    case WeightPolicy::kRecompute: return 0;
  }
  return 0;
}

CostModel per_chunk(const CostModel& c, int v) {
  if (v <= 1 || c.stages.size() != 1) return c;
  CostModel out = c;
  StageCost& s = out.stages[0];
  for (double* x : {&s.f, &s.b, &s.i, &s.w, &s.opt, &s.activation_bytes, &s.weight_bytes, &s.grad_bytes,
                    &s.optimizer_bytes, &s.workspace_bytes, &s.copy})
    *x /= v;
  if (s.fb >= 0) s.fb /= v;
  if (s.version_bytes >= 0) s.version_bytes /= v;
  out.description += fmt::format(" (per device; 1/{} per chunk)", v);
  return out;
}

CostModel parse_uniform_cost(std::string_view spec) {
  static const std::map<std::string, std::string> keys = {
      {"f", "f"}, {"b", "b"}, {"i", "i"}, {"w", "w"}, {"opt", "opt"}, {"fb", "fb"},
      {"act", "activation_bytes"}, {"ifree", "freed_by_i"}, {"weights", "weight_bytes"},
      {"grads", "grad_bytes"}, {"optstate", "optimizer_bytes"}};
  Partial p;
  CostModel c;
  double msg = 0;
  bool sized = false;
  std::string text(spec);
  size_t at = 0;
  while (at <= text.size() && !text.empty()) {
    size_t comma = text.find(',', at);
    std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    at = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    size_t eq = item.find('=');
    std::string key = item.substr(0, eq);
    if (eq == std::string::npos)
      throw CostError(fmt::format("--cost: '{}' is not KEY=VALUE (keys: f, b, i, w, opt, fb, comm, "
                                  "bw, msg, act, ifree, weights, grads, optstate)", excerpt(item)));
    double value;
    try {
      size_t used = 0;
      value = std::stod(item.substr(eq + 1), &used);
      if (used != item.size() - eq - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw CostError(fmt::format("--cost: {}: '{}' is not a number", excerpt(key),
                                  excerpt(item.substr(eq + 1))));
    }
    if (!(value >= 0) || !std::isfinite(value))
      throw CostError(fmt::format("--cost: {} must be a finite number >= 0 (got {})", excerpt(key), value));
    if (key == "comm") c.latency = value;
    else if (key == "bw") c.bandwidth = value;
    else if (key == "msg") msg = value;
    else if (keys.count(key)) {
      p.v[keys.at(key)] = value;
      if (key == "weights" || key == "grads" || key == "optstate" || key == "act") sized = true;
    } else
      throw CostError(fmt::format("--cost: unknown key '{}' (keys: f, b, i, w, opt, fb, comm, bw, "
                                  "msg, act, ifree, weights, grads, optstate)", excerpt(key)));
  }
  StageCost s = resolve(p, StageCost{}, false, "--cost");
  s.send_bytes = s.grad_send_bytes = msg;
  check_stage(s, "--cost");
  c.stages = {s};
  c.memory_unit = sized ? "B" : "slots";
  c.description = fmt::format("uniform f={} b={} (i={} w={}) opt={} comm={}", s.f, s.b, s.i, s.w,
                              s.opt, c.latency);
  if (s.fb >= 0) c.description += fmt::format(" fb={}", s.fb);
  return c;
}

namespace {

CostModel cost_from_json_checked(std::string_view text, const std::string& source) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    throw CostError(fmt::format("{}: not valid JSON (byte {}): the file may be truncated", source, e.byte));
  } catch (const json::exception&) {
    throw CostError(fmt::format("{}: a number in the JSON is out of range (costs must be finite numbers)",
                                source));
  }
  if (!j.is_object()) throw CostError(source + ": top level must be an object");
  if (!j.contains("format") || j["format"] != "paci-cost")
    throw CostError(source + ": format: must be \"paci-cost\"");
  if (!j.contains("version") || j["version"] != 1)
    throw CostError(source + ": version: must be 1");
  static const std::vector<std::string> top = {
      "format", "version", "latency", "bandwidth", "samples_per_microbatch",
      "tokens_per_microbatch", "device_memory", "memory_unit", "description", "default", "stages",
      "contention", "preallocated_activations"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find(top.begin(), top.end(), it.key()) == top.end())
      throw CostError(fmt::format("{}: unknown field '{}' (allowed: {})", source, excerpt(it.key()), join(top)));
  auto number = [&](const json& obj, const std::string& key, const std::string& where,
                    double dflt) -> double {
    if (!obj.contains(key)) return dflt;
    const json& v = obj[key];
    if (!v.is_number())
      throw CostError(fmt::format("{}: {}: must be a number >= 0 (got {})", source, where,
                                  excerpt(v.dump())));
    double x = v.get<double>();
    if (!(x >= 0) || !std::isfinite(x))
      throw CostError(fmt::format("{}: {}: must be a finite number >= 0 (got {})", source, where,
                                  excerpt(v.dump())));
    return x;
  };
  auto partial = [&](const json& obj, const std::string& where) {
    if (!obj.is_object()) throw CostError(fmt::format("{}: {}: must be an object", source, where));
    Partial p;
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const auto& f = stage_fields();
      if (std::find(f.begin(), f.end(), it.key()) == f.end())
        throw CostError(fmt::format("{}: {}.{}: unknown field (allowed: {})", source, where,
                                    excerpt(it.key()), join(f)));
      p.v[it.key()] = number(obj, it.key(), where + "." + it.key(), 0);
    }
    return p;
  };
  CostModel c;
  c.latency = number(j, "latency", "latency", 0);
  c.bandwidth = number(j, "bandwidth", "bandwidth", 0);
  c.samples_per_microbatch = number(j, "samples_per_microbatch", "samples_per_microbatch", 1);
  c.tokens_per_microbatch = number(j, "tokens_per_microbatch", "tokens_per_microbatch", 0);
  c.device_memory = number(j, "device_memory", "device_memory", 0);
  if (j.contains("preallocated_activations")) {
    if (!j["preallocated_activations"].is_boolean())
      throw CostError(source + ": preallocated_activations: must be true or false");
    c.preallocated_activations = j["preallocated_activations"].get<bool>();
  }
  if (j.contains("contention")) {
    const json& k = j["contention"];
    if (!k.is_object()) throw CostError(source + ": contention: must be an object {\"F\": ..., \"B\": ...}");
    for (auto it = k.begin(); it != k.end(); ++it) {
      int at = -1;
      for (int i = 0; i < 6; ++i)
        if (it.key() == kContentionKinds[i]) at = i;
      if (at < 0)
        throw CostError(fmt::format("{}: contention.{}: unknown action kind (allowed: F, B, I, W, OPT, FB)", source,
                                    excerpt(it.key())));
      c.contention[at] = number(k, it.key(), "contention." + it.key(), 0);
      if (c.contention[at] > 100)
        throw CostError(fmt::format("{}: contention.{}: must be in 0..100 (a slowdown per other busy device; got {})",
                                    source, it.key(), c.contention[at]));
    }
  }
  auto text_field = [&](const char* key, const std::string& dflt) {
    if (!j.contains(key)) return dflt;
    if (!j[key].is_string())
      throw CostError(fmt::format("{}: {}: must be a string (got {})", source, key, j[key].type_name()));
    std::string v = j[key].get<std::string>();
    if (v.size() > 200 || v.find_first_of("\n\r") != std::string::npos)
      throw CostError(fmt::format("{}: {}: must be one line of at most 200 characters (got \"{}\")", source, key,
                                  excerpt(v)));
    return v;
  };
  c.memory_unit = text_field("memory_unit", "B");
  if (c.memory_unit != "B" && c.memory_unit != "slots")
    throw CostError(fmt::format("{}: memory_unit: must be \"B\" or \"slots\" (got \"{}\")", source,
                                excerpt(c.memory_unit)));
  c.description = text_field("description", source);
  StageCost base;
  bool base_split = false;
  if (j.contains("default")) {
    Partial p = partial(j["default"], "default");
    base = resolve(p, StageCost{}, false, source + ": default");
    base_split = p.v.count("i") || p.v.count("w");
    check_stage(base, source + ": default");
  }
  if (j.contains("stages")) {
    if (!j["stages"].is_array() || j["stages"].empty())
      throw CostError(source + ": stages: must be a non-empty array of objects");
    for (size_t s = 0; s < j["stages"].size(); ++s) {
      std::string where = fmt::format("stages[{}]", s);
      StageCost sc = resolve(partial(j["stages"][s], where), base, base_split, source + ": " + where);
      check_stage(sc, source + ": " + where);
      c.stages.push_back(sc);
    }
  } else if (j.contains("default")) {
    c.stages = {base};
  } else {
    throw CostError(source + ": needs \"stages\" (one object per stage) or \"default\"");
  }
  return c;
}

}  // namespace

CostModel cost_from_json(std::string_view text, const std::string& source) {
  try {
    return cost_from_json_checked(text, source);
  } catch (const json::exception& e) {
    // Every access above checks its type; kept so that no nlohmann error escapes.
    throw CostError(fmt::format("{}: wrong type in the cost file (nlohmann error {})", source, e.id));
  }
}

CostModel load_cost_file(const std::string& path) {
  std::string text;
  try {
    text = read_input_file(path, "cost file", kMaxInputFileBytes);
  } catch (const InputError& e) {
    throw CostError(e.what());
  }
  return cost_from_json(text, path);
}

std::string cost_to_json(const CostModel& c) {
  json j = {{"format", "paci-cost"},
            {"version", 1},
            {"description", c.description},
            {"latency", c.latency},
            {"bandwidth", c.bandwidth},
            {"samples_per_microbatch", c.samples_per_microbatch},
            {"tokens_per_microbatch", c.tokens_per_microbatch},
            {"device_memory", c.device_memory},
            {"contention", json::object()},
            {"preallocated_activations", c.preallocated_activations},
            {"memory_unit", c.memory_unit}};
  for (int k = 0; k < 6; ++k) j["contention"][kContentionKinds[k]] = c.contention[k];
  json st = json::array();
  for (const auto& s : c.stages) {
    st.push_back({{"f", s.f}, {"b", s.b}, {"i", s.i}, {"w", s.w}, {"opt", s.opt},
                  {"activation_bytes", s.activation_bytes}, {"freed_by_i", s.freed_by_i},
                  {"weight_bytes", s.weight_bytes}, {"grad_bytes", s.grad_bytes},
                  {"optimizer_bytes", s.optimizer_bytes}, {"workspace_bytes", s.workspace_bytes}, {"copy", s.copy},
                  {"send_bytes", s.send_bytes},
                  {"grad_send_bytes", s.grad_send_bytes}});
    if (s.fb >= 0) st.back()["fb"] = s.fb;
    if (s.version_bytes >= 0) st.back()["version_bytes"] = s.version_bytes;
  }
  j["stages"] = st;
  return j.dump(2) + "\n";
}

}  // namespace paci
