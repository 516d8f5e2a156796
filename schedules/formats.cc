#include "schedules/formats.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "schedules/files.h"
#include "schedules/validate.h"

namespace paci {
namespace {

using nlohmann::json;

bool parse_int(std::string_view s, size_t& i, int& out) {
  size_t start = i;
  long v = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    v = v * 10 + (s[i] - '0');
    if (v > (1L << 30)) return false;
    ++i;
  }
  out = static_cast<int>(v);
  return i > start;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Actions PyTorch may list that paci derives from dependencies instead.
bool is_derived_action(std::string_view kind) {
  return kind == "SEND_F" || kind == "RECV_F" || kind == "SEND_B" || kind == "RECV_B" ||
         kind == "UNSHARD" || kind == "RESHARD" || kind == "REDUCE_GRAD";
}

}  // namespace

std::optional<Action> parse_action(std::string_view text) {
  size_t i = 0;
  int stage = 0, mb = 0;
  if (!parse_int(text, i, stage)) return std::nullopt;
  std::string_view rest = text.substr(i);
  if (rest == "OPT") return Opt(stage);
  if (rest.empty()) return std::nullopt;
  ActionKind kind;
  switch (rest[0]) {
    case 'F': kind = ActionKind::F; break;
    case 'B': kind = ActionKind::B; break;
    case 'I': kind = ActionKind::I; break;
    case 'W': kind = ActionKind::W; break;
    default: return std::nullopt;
  }
  i = 0;
  rest.remove_prefix(1);
  if (!parse_int(rest, i, mb) || i != rest.size()) return std::nullopt;
  return Action{kind, stage, mb};
}

std::string to_json(const Schedule& s) {
  json j;
  j["format"] = kScheduleFormatVersion;
  j["kind"] = "paci-schedule";
  j["name"] = s.name;
  j["devices"] = s.spec.devices;
  j["virtual_stages"] = s.spec.virtual_stages;
  j["microbatches"] = s.spec.microbatches;
  j["steps"] = s.spec.steps;
  j["accum"] = s.accum;
  j["policy"] = std::string(policy_name(s.policy));
  j["stage_device"] = s.stage_device;
  json progs = json::array();
  for (const auto& p : s.programs) {
    json row = json::array();
    for (const auto& a : p) row.push_back(to_string(a));
    progs.push_back(std::move(row));
  }
  j["programs"] = std::move(progs);
  json b = json::object();
  if (!s.bounds.max_drift.empty()) b["max_drift"] = s.bounds.max_drift;
  if (!s.bounds.max_delay.empty()) b["max_delay"] = s.bounds.max_delay;
  if (!s.bounds.max_inflight.empty()) b["max_inflight"] = s.bounds.max_inflight;
  if (!s.bounds.max_weight_copies.empty()) b["max_weight_copies"] = s.bounds.max_weight_copies;
  j["bounds"] = std::move(b);
  return j.dump(1) + "\n";
}

Schedule schedule_from_json(std::string_view text, const std::string& source) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    throw FormatError(fmt::format("{}: not valid JSON (byte {}): the file may be truncated",
                                  source, e.byte));
  }
  auto need = [&](const char* key) -> const json& {
    if (!j.is_object() || !j.contains(key))
      throw FormatError(fmt::format("{}: missing field \"{}\" (a paci schedule JSON has format, "
                                    "devices, microbatches, steps, accum, policy, stage_device, "
                                    "programs)", source, key));
    return j.at(key);
  };
  auto get_int = [&](const char* key) {
    const json& v = need(key);
    if (!v.is_number_integer())
      throw FormatError(fmt::format("{}: field \"{}\" must be an integer", source, key));
    return v.get<int>();
  };
  int version = get_int("format");
  if (version != kScheduleFormatVersion)
    throw FormatError(fmt::format("{}: schedule format {} is not supported (this paci reads "
                                  "format {})", source, version, kScheduleFormatVersion));
  Schedule s;
  try {
    s.name = j.value("name", std::string("imported"));
    s.spec.devices = get_int("devices");
    s.spec.virtual_stages = get_int("virtual_stages");
    s.spec.microbatches = get_int("microbatches");
    s.spec.steps = get_int("steps");
    s.accum = get_int("accum");
    std::string pol = need("policy").get<std::string>();
    auto p = parse_policy(pol);
    if (!p)
      throw FormatError(fmt::format("{}: unknown weight policy \"{}\" (allowed: current, stash, "
                                    "double-buffer)", source, pol));
    s.policy = *p;
    s.stage_device = need("stage_device").get<std::vector<int>>();
    const json& progs = need("programs");
    if (!progs.is_array())
      throw FormatError(fmt::format("{}: \"programs\" must be an array of arrays", source));
    for (size_t d = 0; d < progs.size(); ++d) {
      std::vector<Action> prog;
      for (size_t k = 0; k < progs[d].size(); ++k) {
        std::string cell = progs[d][k].get<std::string>();
        auto a = parse_action(cell);
        if (!a)
          throw FormatError(fmt::format("{}: programs[{}][{}]: unknown action \"{}\" (expected "
                                        "e.g. 0F1, 1B0, 2I3, 2W3, 0OPT)", source, d, k, cell));
        prog.push_back(*a);
      }
      s.programs.push_back(std::move(prog));
    }
    if (j.contains("bounds")) {
      const json& b = j.at("bounds");
      if (b.contains("max_drift")) s.bounds.max_drift = b["max_drift"].get<std::vector<int>>();
      if (b.contains("max_delay")) s.bounds.max_delay = b["max_delay"].get<std::vector<int>>();
      if (b.contains("max_inflight")) s.bounds.max_inflight = b["max_inflight"].get<std::vector<int>>();
      if (b.contains("max_weight_copies"))
        s.bounds.max_weight_copies = b["max_weight_copies"].get<std::vector<int>>();
    }
  } catch (const json::exception& e) {
    throw FormatError(fmt::format("{}: wrong type in schedule JSON ({})", source, e.what()));
  }
  return s;
}

std::string to_csv(const Schedule& s) {
  std::string out;
  for (const auto& prog : s.programs) {
    for (size_t k = 0; k < prog.size(); ++k) {
      if (k) out += ',';
      out += to_string(prog[k]);
    }
    out += '\n';
  }
  return out;
}

Schedule schedule_from_csv(std::string_view text, const std::string& source,
                           const CsvHints& hints) {
  std::vector<std::vector<Action>> rows;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<Action> row;
    size_t col = 0;
    while (true) {
      ++col;
      size_t comma = std::string_view::npos;
      // A composite cell "(a;b)KIND" holds no commas, so splitting on commas is safe.
      comma = line.find(',');
      std::string_view cell = trim(line.substr(0, comma));
      auto bad = [&](std::string_view what) {
        return FormatError(fmt::format("{}: row {}, column {}: unknown action \"{}\" (expected "
                                       "e.g. 0F1, 1B0, 2I3, 2W3, 0OPT or (0F7;7B3)OVERLAP_F_B)",
                                       source, line_no, col, what));
      };
      if (!cell.empty()) {
        if (cell.front() == '(') {
          size_t close = cell.find(')');
          if (close == std::string_view::npos) throw bad(cell);
          std::string_view inner = cell.substr(1, close - 1);
          while (!inner.empty()) {
            size_t semi = inner.find(';');
            std::string_view sub = trim(inner.substr(0, semi));
            auto a = parse_action(sub);
            if (!a) throw bad(sub);
            row.push_back(*a);
            inner.remove_prefix(semi == std::string_view::npos ? inner.size() : semi + 1);
          }
        } else if (auto a = parse_action(cell)) {
          row.push_back(*a);
        } else {
          size_t i = 0;
          int stage;
          if (!parse_int(cell, i, stage)) throw bad(cell);
          std::string_view kind = cell.substr(i);
          while (!kind.empty() && std::isdigit(static_cast<unsigned char>(kind.back())))
            kind.remove_suffix(1);
          if (!is_derived_action(kind)) throw bad(cell);
        }
      }
      if (comma == std::string_view::npos) break;
      line.remove_prefix(comma + 1);
    }
    rows.push_back(std::move(row));
  }
  // A trailing newline leaves no extra row; drop trailing blank lines the same way.
  while (!rows.empty() && rows.back().empty()) rows.pop_back();
  if (rows.empty()) throw FormatError(fmt::format("{}: no rows: a schedule CSV has one row per rank", source));

  Schedule s;
  s.name = hints.name.value_or("imported");
  s.policy = hints.policy.value_or(WeightPolicy::kCurrent);
  const int D = static_cast<int>(rows.size());
  int S = 0, T = 0;
  for (const auto& r : rows)
    for (const auto& a : r) {
      S = std::max(S, a.stage + 1);
      if (a.kind != ActionKind::OPT) T = std::max(T, a.mb + 1);
    }
  if (S == 0 || T == 0) throw FormatError(fmt::format("{}: no forward or backward actions", source));
  s.stage_device.assign(S, -1);
  for (int d = 0; d < D; ++d)
    for (const auto& a : rows[d]) {
      int& dev = s.stage_device[a.stage];
      if (dev >= 0 && dev != d)
        throw FormatError(fmt::format("{}: stage {} appears on rank {} and rank {}: each stage "
                                      "lives on one rank", source, a.stage, dev, d));
      dev = d;
    }
  std::vector<int> per_device(D, 0);
  for (int st = 0; st < S; ++st) {
    if (s.stage_device[st] < 0)
      throw FormatError(fmt::format("{}: stage {} has no actions (stages are numbered 0..{})",
                                    source, st, S - 1));
    ++per_device[s.stage_device[st]];
  }
  if (S % D != 0 || std::any_of(per_device.begin(), per_device.end(), [&](int n) { return n != S / D; }))
    throw FormatError(fmt::format("{}: {} stages on {} ranks: every rank must hold the same number "
                                  "of stages", source, S, D));
  std::vector<int> opts(S, 0);
  for (const auto& r : rows)
    for (const auto& a : r)
      if (a.kind == ActionKind::OPT) ++opts[a.stage];
  int K = opts[0];
  for (int st = 0; st < S; ++st)
    if (opts[st] != K)
      throw FormatError(fmt::format("{}: stage {} has {} OPT cells but stage 0 has {}: every "
                                    "stage steps equally often", source, st, opts[st], K));
  if (K == 0) {
    K = 1;
    for (int d = 0; d < D; ++d)
      for (int st = 0; st < S; ++st)
        if (s.stage_device[st] == d) rows[d].push_back(Opt(st));
  }
  if (T % K != 0)
    throw FormatError(fmt::format("{}: {} micro-batches do not split evenly over {} optimizer "
                                  "steps per stage", source, T, K));
  s.accum = T / K;
  int M = hints.microbatches.value_or(s.accum);
  if (M < 1 || T % M != 0)
    throw FormatError(fmt::format("{}: --microbatches {} does not divide the {} micro-batches "
                                  "in the file", source, M, T));
  s.spec = {D, S / D, M, T / M};
  s.programs = std::move(rows);
  return s;
}

namespace {

std::string extension(const std::string& path) {
  size_t dot = path.rfind('.');
  if (dot == std::string::npos) return "";
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

}  // namespace

Schedule load_schedule(const std::string& path, const CsvHints& hints) {
  std::string ext = extension(path);
  if (ext != "json" && ext != "csv")
    throw FormatError(fmt::format("{}: unknown schedule file type (allowed: .json, .csv)", path));
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::runtime_error& e) {
    throw FormatError(fmt::format("{}: cannot open schedule file", path));
  }
  Schedule s = ext == "json" ? schedule_from_json(text, path) : schedule_from_csv(text, path, hints);
  try {
    validate(s);
  } catch (const ScheduleError& e) {
    throw ScheduleError(fmt::format("{}: {}", path, e.what()), e.context());
  }
  return s;
}

void save_schedule(const Schedule& s, const std::string& path) {
  std::string ext = extension(path);
  if (ext != "json" && ext != "csv")
    throw FormatError(fmt::format("{}: unknown schedule file type (allowed: .json, .csv)", path));
  try {
    write_file_atomic(path, ext == "json" ? to_json(s) : to_csv(s));
  } catch (const std::runtime_error& e) {
    throw FormatError(e.what());
  }
}

}  // namespace paci
