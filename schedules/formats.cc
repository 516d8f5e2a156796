#include "schedules/formats.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>

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
  // An overlapped F&B: "(0F7;7B3)OVERLAP_F_B", a forward then a whole backward.
  constexpr std::string_view kOverlap = ")OVERLAP_F_B";
  if (!text.empty() && text.front() == '(' && text.size() > kOverlap.size() &&
      text.substr(text.size() - kOverlap.size()) == kOverlap) {
    std::string_view inner = text.substr(1, text.size() - 1 - kOverlap.size());
    size_t semi = inner.find(';');
    if (semi == std::string_view::npos) return std::nullopt;
    auto f = parse_action(inner.substr(0, semi)), b = parse_action(inner.substr(semi + 1));
    if (!f || !b || f->kind != ActionKind::F || b->kind != ActionKind::B) return std::nullopt;
    return FwdBwd(f->stage, f->mb, b->stage, b->mb);
  }
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
  } catch (const json::exception& e) {
    // e.g. out_of_range.406 "number overflow parsing '1e999'"
    throw FormatError(fmt::format("{}: a number in the JSON is out of range (numbers must fit a "
                                  "double; ids and counts are integers)", source));
  }
  if (!j.is_object())
    throw FormatError(fmt::format("{}: a paci schedule JSON is an object (format, devices, ...)", source));
  auto need = [&](const char* key) -> const json& {
    if (!j.contains(key))
      throw FormatError(fmt::format("{}: missing field \"{}\" (a paci schedule JSON has format, "
                                    "devices, microbatches, steps, accum, policy, stage_device, "
                                    "programs)", source, key));
    return j.at(key);
  };
  // An integer in lo..hi, never wrapped or truncated.
  auto as_int = [&](const json& v, const std::string& field, int64_t lo, int64_t hi) -> int {
    bool ok = false;
    int64_t x = 0;
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      ok = u <= static_cast<uint64_t>(hi);
      x = ok ? static_cast<int64_t>(u) : 0;
    } else if (v.is_number_integer()) {
      x = v.get<int64_t>();
      ok = true;
    }
    if (!ok || x < lo || x > hi) {
      std::string got = v.is_number() || v.is_boolean() || v.is_null() ? v.dump() : std::string(v.type_name());
      throw FormatError(fmt::format("{}: field \"{}\" must be an integer in {}..{} (got {})", source,
                                    field, lo, hi, excerpt(got)));
    }
    return static_cast<int>(x);
  };
  auto as_string = [&](const json& v, const std::string& field) -> std::string {
    if (!v.is_string())
      throw FormatError(fmt::format("{}: field \"{}\" must be a string (got {})", source, field, v.type_name()));
    return v.get<std::string>();
  };
  int version = as_int(need("format"), "format", INT32_MIN, INT32_MAX);
  if (version != kScheduleFormatVersion)
    throw FormatError(fmt::format("{}: schedule format {} is not supported (this paci reads "
                                  "format {})", source, version, kScheduleFormatVersion));
  Schedule s;
  try {
    s.name = j.contains("name") ? as_string(j.at("name"), "name") : std::string("imported");
    if (s.name.size() > 200 || s.name.find('\n') != std::string::npos)
      throw FormatError(fmt::format("{}: field \"name\" must be one line of at most 200 characters "
                                    "(got \"{}\")", source, excerpt(s.name)));
    // Sizes are bounded by what the file holds: every (stage, micro-batch) pair needs its own
    // forward, so devices x virtual x microbatches x steps <= the number of actions.
    const json& progs = need("programs");
    if (!progs.is_array())
      throw FormatError(fmt::format("{}: \"programs\" must be an array of arrays", source));
    int64_t A = 0;
    for (size_t d = 0; d < progs.size(); ++d) {
      if (!progs[d].is_array())
        throw FormatError(fmt::format("{}: programs[{}] must be an array of action strings", source, d));
      A += static_cast<int64_t>(progs[d].size());
    }
    const int64_t cap = std::max<int64_t>(A, 1);
    s.spec.devices = as_int(need("devices"), "devices", 1, cap);
    s.spec.virtual_stages = as_int(need("virtual_stages"), "virtual_stages", 1, cap);
    s.spec.microbatches = as_int(need("microbatches"), "microbatches", 1, cap);
    s.spec.steps = as_int(need("steps"), "steps", 1, cap);
    const int64_t S = int64_t{s.spec.devices} * s.spec.virtual_stages;
    const int64_t T = int64_t{s.spec.microbatches} * s.spec.steps;
    if (S > A || T > A || S * T > A)
      throw FormatError(fmt::format("{}: devices {} x virtual_stages {} x microbatches {} x steps {} "
                                    "need at least {} forwards, but \"programs\" holds {} actions",
                                    source, s.spec.devices, s.spec.virtual_stages, s.spec.microbatches,
                                    s.spec.steps, S > A || T > A ? std::max(S, T) : S * T, A));
    if (static_cast<int64_t>(progs.size()) != s.spec.devices)
      throw FormatError(fmt::format("{}: \"programs\" has {} rows but \"devices\" is {}", source,
                                    progs.size(), s.spec.devices));
    s.accum = as_int(need("accum"), "accum", 1, T);
    std::string pol = as_string(need("policy"), "policy");
    auto p = parse_policy(pol);
    if (!p)
      throw FormatError(fmt::format("{}: unknown weight policy \"{}\" (allowed: current, stash, "
                                    "double-buffer, forward, recompute)", source, excerpt(pol)));
    s.policy = *p;
    auto int_list = [&](const json& v, const std::string& field, int64_t lo, int64_t hi) {
      if (!v.is_array() || static_cast<int64_t>(v.size()) != S)
        throw FormatError(fmt::format("{}: field \"{}\" must be an array of {} integers, one per stage",
                                      source, field, S));
      std::vector<int> out;
      for (size_t k = 0; k < v.size(); ++k) out.push_back(as_int(v[k], fmt::format("{}[{}]", field, k), lo, hi));
      return out;
    };
    s.stage_device = int_list(need("stage_device"), "stage_device", 0, s.spec.devices - 1);
    for (size_t d = 0; d < progs.size(); ++d) {
      std::vector<Action> prog;
      prog.reserve(progs[d].size());
      for (size_t k = 0; k < progs[d].size(); ++k) {
        const json& c = progs[d][k];
        std::string cell = c.is_string() ? c.get<std::string>() : c.dump();
        auto a = c.is_string() ? parse_action(cell) : std::nullopt;
        if (!a)
          throw FormatError(fmt::format("{}: programs[{}][{}]: unknown action \"{}\" (expected "
                                        "e.g. 0F1, 1B0, 2I3, 2W3, 0OPT, (0F7;7B3)OVERLAP_F_B)", source, d, k,
                                        excerpt(cell)));
        prog.push_back(*a);
      }
      s.programs.push_back(std::move(prog));
    }
    if (j.contains("bounds")) {
      const json& b = j.at("bounds");
      if (!b.is_object())
        throw FormatError(fmt::format("{}: field \"bounds\" must be an object", source));
      const std::pair<const char*, std::vector<int>*> lists[] = {
          {"max_drift", &s.bounds.max_drift}, {"max_delay", &s.bounds.max_delay},
          {"max_inflight", &s.bounds.max_inflight}, {"max_weight_copies", &s.bounds.max_weight_copies}};
      for (const auto& [key, dst] : lists)
        if (b.contains(key)) *dst = int_list(b.at(key), std::string("bounds.") + key, 0, INT32_MAX);
    }
  } catch (const json::exception& e) {
    // Not expected (every access above checks its type); kept so no nlohmann error escapes.
    throw FormatError(fmt::format("{}: wrong type in schedule JSON (nlohmann error {})", source, e.id));
  }
  return s;
}

namespace {

// Why PyTorch's CSV cannot hold `s`, or "" if it can. PyTorch's schedules describe one step
// and run the optimizer outside; so each stage may update at most once, after all its work.
std::string not_torch_expressible(const Schedule& s) {
  const int S = s.stages();
  std::vector<int> opts(S, 0);
  std::vector<char> done(S, 0);  // an OPT of the stage was seen on its device
  for (const auto& prog : s.programs)
    for (const Action& a : prog) {
      if (a.stage < 0 || a.stage >= S) return fmt::format("action {} names no stage", to_string(a));
      if (a.kind == ActionKind::FB && (a.stage_b < 0 || a.stage_b >= S))
        return fmt::format("action {} names no stage", to_string(a));
      if (a.kind == ActionKind::FB && done[a.stage_b])
        return fmt::format("stage {} computes {} after its optimizer step, so updates happen inside the "
                           "schedule", a.stage_b, to_string(a));
      if (a.kind == ActionKind::OPT) {
        ++opts[a.stage];
        done[a.stage] = 1;
      } else if (done[a.stage]) {
        return fmt::format("stage {} computes {} after its optimizer step, so updates happen inside the "
                           "schedule ({})", a.stage, to_string(a),
                           s.spec.steps > 1 ? fmt::format("{} steps", s.spec.steps) : "no flush");
      }
    }
  for (int st = 0; st < S; ++st)
    if (opts[st] > 1)
      return fmt::format("stage {} updates its weights {} times ({} steps of {} micro-batches, an update "
                         "every {}), and PyTorch's CSV describes one step with the optimizer outside",
                         st, opts[st], s.spec.steps, s.spec.microbatches, s.accum);
  return "";
}

// RFC 4180 records as Python's csv module reads them: fields split on commas, a field that
// starts with '"' runs to the matching '"' ("" inside is one quote, commas and line breaks
// are kept), records end at \n, \r\n or \r outside quotes.
struct CsvCell {
  std::string text;
  size_t row, col;  // 1-based
};

// Calls on_cell(const CsvCell&) for every cell and on_row(size_t row) at the end of every
// record, holding one cell at a time (memory stays independent of the file's shape).
template <typename OnCell, typename OnRow>
void split_csv(std::string_view text, const std::string& source, OnCell on_cell, OnRow on_row) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  size_t i = 0, row = 1, col = 1, record_row = 1;
  CsvCell cur;
  std::string& cell = cur.text;
  bool any = false;  // the record has content (so a last line without \n still counts)
  auto end_cell = [&] {
    cur.row = record_row;
    cur.col = col;
    on_cell(static_cast<const CsvCell&>(cur));
    cell.clear();
    ++col;
  };
  auto end_row = [&] {
    end_cell();
    on_row(record_row);
    ++row;
    record_row = row;
    col = 1;
    any = false;
  };
  while (i < text.size()) {
    char c = text[i];
    if (c == '"' && cell.empty()) {
      // Quoted field.
      size_t start_row = row;
      ++i;
      any = true;
      while (true) {
        if (i >= text.size())
          throw FormatError(fmt::format("{}: row {}, column {}: a quoted cell is not closed (a '\"' "
                                        "starts it; write \"\" for a quote inside)", source, start_row, col));
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            cell += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (text[i] == '\n') ++row;
        cell += text[i++];
        if (cell.size() > 4096) {
          // No action is this long; stop before copying a whole file into one cell.
          throw FormatError(fmt::format("{}: row {}, column {}: a quoted cell of more than 4096 "
                                        "characters (\"{}\"): not an action", source, start_row, col,
                                        excerpt(cell)));
        }
      }
      if (i < text.size() && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
        throw FormatError(fmt::format("{}: row {}, column {}: text after the closing quote (\"{}\"): a "
                                      "quoted cell ends at its quote", source, row, col,
                                      excerpt(text.substr(i, 40))));
      continue;
    }
    if (c == ',') {
      end_cell();
      any = true;
      ++i;
    } else if (c == '\n' || c == '\r') {
      end_row();
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++i;
    } else {
      cell += c;
      any = true;
      ++i;
      if (cell.size() > 4096)
        throw FormatError(fmt::format("{}: row {}, column {}: a cell of more than 4096 characters "
                                      "(\"{}\"): not an action", source, row, col, excerpt(cell)));
    }
  }
  if (any || !cell.empty() || col > 1) end_row();
}

constexpr const char* kCellHelp =
    "expected e.g. 0F1, 1B0, 2I3, 2W3, 0OPT, (0F7;7B3)OVERLAP_F_B, 0SEND_F1 or an empty cell";

}  // namespace

std::string to_csv(const Schedule& s) {
  std::string why = not_torch_expressible(s);
  if (!why.empty())
    throw FormatError(fmt::format("schedule '{}' cannot be written as a PyTorch CSV: {}; write .json "
                                  "for the full IR (paci reads both)", s.name, why));
  std::string out;
  for (const auto& prog : s.programs) {
    bool first = true;
    for (const Action& a : prog) {
      if (a.kind == ActionKind::OPT) continue;  // the optimizer runs outside PyTorch's schedule
      if (!first) out += ',';
      out += to_string(a);
      first = false;
    }
    out += '\n';
  }
  return out;
}

Schedule schedule_from_csv(std::string_view text, const std::string& source,
                           const CsvHints& hints) {
  // All actions in one flat list, rows as offsets into it: memory stays proportional to the
  // actions the file holds, whatever its shape.
  std::vector<Action> flat;
  std::vector<size_t> row_end;
  size_t blank_run = 0;     // blank rows not yet followed by a non-blank one
  size_t row_start = 0;     // flat.size() when the current record began
  auto on_cell = [&](const CsvCell& c) {
    std::string_view cell = trim(c.text);
    auto bad = [&](std::string_view what, const char* why = nullptr) {
      return FormatError(fmt::format("{}: row {}, column {}: {} \"{}\" ({})", source, c.row, c.col,
                                     why ? why : "unknown action", excerpt(what), kCellHelp));
    };
    if (cell.empty()) return;
    if (cell.front() == '(') {
      size_t close = cell.find(')');
      if (close == std::string_view::npos) throw bad(cell, "unclosed composite cell");
      std::string_view kind = cell.substr(close + 1);
      if (kind != "OVERLAP_F_B")
        throw bad(cell, kind.empty() ? "composite cell without a kind"
                                     : "composite cell of unknown kind (allowed: OVERLAP_F_B)");
      if (auto fb = parse_action(cell)) {  // a forward and a whole backward: one FB action
        flat.push_back(*fb);
        return;
      }
      std::string_view inner = cell.substr(1, close - 1);
      size_t subs = 0;
      while (true) {
        size_t semi = inner.find(';');
        std::string_view sub = trim(inner.substr(0, semi));
        if (!sub.empty()) {
          auto a = parse_action(sub);
          if (!a || a->kind == ActionKind::OPT) throw bad(sub, "unknown sub-action");
          flat.push_back(*a);
          ++subs;
        }
        if (semi == std::string_view::npos) break;
        inner.remove_prefix(semi + 1);
      }
      if (subs == 0) throw bad(cell, "composite cell without actions");
    } else if (auto a = parse_action(cell)) {
      flat.push_back(*a);
    } else {
      size_t i = 0;
      int stage;
      if (!parse_int(cell, i, stage)) throw bad(cell);
      std::string_view kind = cell.substr(i);
      while (!kind.empty() && std::isdigit(static_cast<unsigned char>(kind.back())))
        kind.remove_suffix(1);
      if (!is_derived_action(kind)) throw bad(cell);
    }
  };
  auto on_row = [&](size_t row) {
    if (flat.size() == row_start) {
      ++blank_run;
      return;
    }
    if (blank_run > 0)
      throw FormatError(fmt::format("{}: row {} has no actions: every row is a rank that holds at least "
                                    "one stage (blank rows may only end the file)", source, row - 1));
    row_end.push_back(flat.size());
    row_start = flat.size();
  };
  split_csv(text, source, on_cell, on_row);
  if (row_end.empty())
    throw FormatError(fmt::format("{}: no rows: a schedule CSV has one row per rank", source));

  // Sizes are bounded by what the file holds: every stage and micro-batch id is below the
  // number of actions A, and every (stage, micro-batch) needs its own F, so S x T <= A.
  const int64_t A = static_cast<int64_t>(flat.size());
  int64_t S64 = 0, T64 = 0;
  int64_t plain = 0;  // plain actions: an FB holds two
  for (const Action& whole : flat) {
    Action sub[2];
    const int n = sub_actions(whole, sub);
    plain += n;
    for (int k = 0; k < n; ++k) {
      const Action& a = sub[k];
      if (a.stage >= A || a.mb >= A)
        throw FormatError(fmt::format("{}: action {} names {} {}, but the file holds only {} actions "
                                      "(stage and micro-batch ids must be below the number of actions)",
                                      source, to_string(whole), a.stage >= A ? "stage" : "micro-batch",
                                      a.stage >= A ? a.stage : a.mb, A));
      S64 = std::max<int64_t>(S64, a.stage + 1);
      if (a.kind != ActionKind::OPT) T64 = std::max<int64_t>(T64, a.mb + 1);
    }
  }
  if (S64 == 0 || T64 == 0) throw FormatError(fmt::format("{}: no forward or backward actions", source));
  if (S64 * T64 > plain)
    throw FormatError(fmt::format("{}: {} stages x {} micro-batches need at least {} forwards, but the "
                                  "file holds only {} actions", source, S64, T64, S64 * T64, plain));
  const int S = static_cast<int>(S64), T = static_cast<int>(T64);
  std::vector<std::vector<Action>> rows(row_end.size());
  for (size_t d = 0, at = 0; d < row_end.size(); at = row_end[d++])
    rows[d].assign(flat.begin() + static_cast<std::ptrdiff_t>(at),
                   flat.begin() + static_cast<std::ptrdiff_t>(row_end[d]));
  flat.clear();
  flat.shrink_to_fit();

  Schedule s;
  s.name = hints.name.value_or("imported");
  s.policy = hints.policy.value_or(WeightPolicy::kCurrent);
  const int D = static_cast<int>(rows.size());
  s.stage_device.assign(S, -1);
  for (int d = 0; d < D; ++d)
    for (const auto& whole : rows[d]) {
      Action sub[2];
      const int n = sub_actions(whole, sub);
      for (int k = 0; k < n; ++k) {
        int& dev = s.stage_device[sub[k].stage];
        if (dev >= 0 && dev != d)
          throw FormatError(fmt::format("{}: stage {} appears on rank {} and rank {}: each stage "
                                        "lives on one rank", source, sub[k].stage, dev, d));
        dev = d;
      }
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
    text = read_input_file(path, "schedule file", kMaxScheduleFileBytes);
  } catch (const InputError& e) {
    throw FormatError(e.what());
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
