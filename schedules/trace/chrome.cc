#include "schedules/trace/chrome.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "schedules/files.h"
#include "schedules/formats.h"

namespace paci {
namespace {

using nlohmann::json;

constexpr int kComputeTid = 0, kSendTid = 1, kRecvTid = 2;

// Microseconds, shortest text that reads back to the same double.
std::string us(double seconds) { return fmt::format("{}", seconds * 1e6); }

}  // namespace

std::string to_chrome_json(const Trace& t) {
  fmt::memory_buffer out;
  auto put = [&](auto&&... args) { fmt::format_to(std::back_inserter(out), args...); };
  json header = {
      {"paci_trace", kTraceFormatVersion},
      {"schedule", t.schedule},
      {"origin", t.origin},
      {"cost", t.cost},
      {"devices", t.spec.devices},
      {"virtual_stages", t.spec.virtual_stages},
      {"microbatches", t.spec.microbatches},
      {"steps", t.spec.steps},
      {"accum", t.accum},
      {"policy", std::string(policy_name(t.policy))},
      {"stage_device", t.stage_device},
      {"samples_per_microbatch", t.samples_per_microbatch},
      {"tokens_per_microbatch", t.tokens_per_microbatch},
      {"memory_unit", t.memory_unit},
  };
  json stat = json::array();
  for (const auto& m : t.static_memory)
    stat.push_back({{"weights", m.weights}, {"grads", m.grads}, {"optimizer", m.optimizer},
                    {"stashed", m.stashed}, {"workspace", m.workspace}});
  header["static_memory"] = stat;
  put("{{\"displayTimeUnit\":\"ms\",\"otherData\":{},\n\"traceEvents\":[\n", header.dump());
  bool first = true;
  auto sep = [&] {
    if (!first) put(",\n");
    first = false;
  };
  for (int d = 0; d < t.spec.devices; ++d) {
    sep();
    put("{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{},\"args\":{{\"name\":\"device {}\"}}}}", d, d);
    put(",\n{{\"ph\":\"M\",\"name\":\"process_sort_index\",\"pid\":{},\"args\":{{\"sort_index\":{}}}}}", d, d);
    const char* names[] = {"compute", "send", "recv"};
    for (int tid = 0; tid < 3; ++tid)
      put(",\n{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{},\"tid\":{},\"args\":{{\"name\":\"{}\"}}}}",
          d, tid, names[tid]);
  }
  for (const auto& a : t.actions) {
    sep();
    put("{{\"ph\":\"X\",\"cat\":\"compute\",\"name\":\"{}\",\"pid\":{},\"tid\":{},\"ts\":{},\"dur\":{},"
        "\"args\":{{\"kind\":\"{}\",\"stage\":{},\"mb\":{},\"pos\":{},\"version\":{},\"t0\":{},\"t1\":{}{}}}}}",
        to_string(a.action), a.device, kComputeTid, us(a.start), us(a.end - a.start),
        kind_name(a.action.kind), a.action.stage, a.action.mb, a.pos, a.version, a.start, a.end,
        a.action.kind == ActionKind::FB
            ? fmt::format(",\"stage_b\":{},\"mb_b\":{},\"version_b\":{}", a.action.stage_b,
                          a.action.mb_b, a.version_b)
            : std::string());
    if (a.action.kind == ActionKind::OPT)
      put(",\n{{\"ph\":\"C\",\"name\":\"version stage {}\",\"pid\":{},\"ts\":{},\"args\":{{\"version\":{}}}}}",
          a.action.stage, a.device, us(a.end), a.version + 1);
  }
  for (size_t k = 0; k < t.transfers.size(); ++k) {
    const auto& x = t.transfers[k];
    const std::string from = to_string(t.actions.at(x.from).action), to = to_string(t.actions.at(x.to).action);
    std::string name = from + "->" + to;
    sep();
    put("{{\"ph\":\"X\",\"cat\":\"transfer\",\"name\":\"{}\",\"pid\":{},\"tid\":{},\"ts\":{},\"dur\":{},"
        "\"args\":{{\"from\":\"{}\",\"to\":\"{}\",\"src\":{},\"dst\":{},\"bytes\":{},\"t0\":{},\"t1\":{}}}}}",
        name, x.src, kSendTid, us(x.start), us(x.end - x.start), from, to,
        x.src, x.dst, x.bytes, x.start, x.end);
    put(",\n{{\"ph\":\"X\",\"cat\":\"transfer-recv\",\"name\":\"{}\",\"pid\":{},\"tid\":{},\"ts\":{},\"dur\":{}}}",
        name, x.dst, kRecvTid, us(x.start), us(x.end - x.start));
    put(",\n{{\"ph\":\"s\",\"cat\":\"flow\",\"name\":\"{}\",\"id\":{},\"pid\":{},\"tid\":{},\"ts\":{}}}", name, k,
        x.src, kSendTid, us(x.start));
    put(",\n{{\"ph\":\"f\",\"bp\":\"e\",\"cat\":\"flow\",\"name\":\"{}\",\"id\":{},\"pid\":{},\"tid\":{},\"ts\":{}}}",
        name, k, x.dst, kRecvTid, us(x.start));
  }
  for (const auto& m : t.memory) {
    sep();
    double total = m.bytes + t.static_memory.at(m.device).total();
    put("{{\"ph\":\"C\",\"name\":\"memory ({})\",\"pid\":{},\"ts\":{},\"args\":{{\"dynamic\":{},\"total\":{}}}}}",
        t.memory_unit, m.device, us(m.time), m.bytes, total);
  }
  put("\n]}}\n");
  return fmt::to_string(out);
}

Trace trace_from_chrome_json(std::string_view text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw TraceFormatError(fmt::format("{}: not JSON: {}", source, e.what()));
  }
  auto fail = [&](const std::string& what) -> TraceFormatError {
    return TraceFormatError(fmt::format("{}: {}", source, what));
  };
  if (!j.is_object() || !j.contains("otherData") || !j["otherData"].contains("paci_trace"))
    throw fail("not a paci trace (no otherData.paci_trace header)");
  const json& h = j["otherData"];
  if (h["paci_trace"] != kTraceFormatVersion)
    throw fail(fmt::format("trace format {} is not supported (this build reads {})",
                           h["paci_trace"].dump(), kTraceFormatVersion));
  Trace t;
  try {
    t.schedule = h.at("schedule").get<std::string>();
    t.origin = h.at("origin").get<std::string>();
    t.cost = h.at("cost").get<std::string>();
    t.spec.devices = h.at("devices").get<int>();
    t.spec.virtual_stages = h.at("virtual_stages").get<int>();
    t.spec.microbatches = h.at("microbatches").get<int>();
    t.spec.steps = h.at("steps").get<int>();
    t.accum = h.at("accum").get<int>();
    auto pol = parse_policy(h.at("policy").get<std::string>());
    if (!pol) throw fail("otherData.policy: unknown weight policy " + h["policy"].dump());
    t.policy = *pol;
    t.stage_device = h.at("stage_device").get<std::vector<int>>();
    t.samples_per_microbatch = h.at("samples_per_microbatch").get<double>();
    t.tokens_per_microbatch = h.at("tokens_per_microbatch").get<double>();
    t.memory_unit = h.at("memory_unit").get<std::string>();
    for (const auto& m : h.at("static_memory"))
      t.static_memory.push_back({m.at("weights").get<double>(), m.at("grads").get<double>(),
                                 m.at("optimizer").get<double>(), m.at("stashed").get<double>(),
                                 m.value("workspace", 0.0)});
    const json& ev = j.at("traceEvents");
    if (!ev.is_array()) throw fail("traceEvents is not an array");
    std::vector<std::pair<Action, Action>> transfer_ends;  // of t.transfers, by name
    for (const auto& e : ev) {
      const std::string ph = e.value("ph", "");
      const std::string cat = e.value("cat", "");
      if (ph == "X" && cat == "compute") {
        const json& a = e.at("args");
        TraceAction x;
        auto kind = a.at("kind").get<std::string>();
        int stage = a.at("stage").get<int>(), mb = a.at("mb").get<int>();
        if (kind == "F") x.action = Fwd(stage, mb);
        else if (kind == "B") x.action = Bwd(stage, mb);
        else if (kind == "I") x.action = BwdI(stage, mb);
        else if (kind == "W") x.action = BwdW(stage, mb);
        else if (kind == "OPT") x.action = Opt(stage);
        else if (kind == "OVERLAP_F_B") {
          x.action = FwdBwd(stage, mb, a.at("stage_b").get<int>(), a.at("mb_b").get<int>());
          x.version_b = a.at("version_b").get<int>();
        }
        else throw fail("compute slice with unknown kind '" + kind + "'");
        x.device = e.at("pid").get<int>();
        x.pos = a.at("pos").get<int>();
        x.version = a.at("version").get<int>();
        x.start = a.at("t0").get<double>();
        x.end = a.at("t1").get<double>();
        t.actions.push_back(x);
      } else if (ph == "X" && cat == "transfer") {
        const json& a = e.at("args");
        TraceTransfer x;
        auto from = parse_action(a.at("from").get<std::string>());
        auto to = parse_action(a.at("to").get<std::string>());
        if (!from || !to) throw fail("transfer slice with bad action names in args.from/args.to");
        transfer_ends.emplace_back(*from, *to);  // found among the actions once all are read
        x.src = a.at("src").get<int>();
        x.dst = a.at("dst").get<int>();
        x.bytes = a.at("bytes").get<double>();
        x.start = a.at("t0").get<double>();
        x.end = a.at("t1").get<double>();
        t.transfers.push_back(x);
      } else if (ph == "C" && e.value("name", "").rfind("memory", 0) == 0) {
        MemorySample m;
        m.device = e.at("pid").get<int>();
        m.time = e.at("ts").get<double>() / 1e6;
        m.bytes = e.at("args").at("dynamic").get<double>();
        t.memory.push_back(m);
      }
    }
    // A transfer's ends: the actions of those names (one per name in a trace of a schedule;
    // the first where a trace has more).
    if (!t.transfers.empty()) {
      std::map<std::tuple<int, int, int, int, int>, int32_t> by_name;
      auto key = [](const Action& a) {
        return std::make_tuple(static_cast<int>(a.kind), a.stage, a.mb, a.stage_b, a.mb_b);
      };
      for (size_t k = 0; k < t.actions.size(); ++k) by_name.emplace(key(t.actions[k].action), static_cast<int32_t>(k));
      for (size_t k = 0; k < t.transfers.size(); ++k) {
        auto from = by_name.find(key(transfer_ends[k].first)), to = by_name.find(key(transfer_ends[k].second));
        if (from == by_name.end() || to == by_name.end())
          throw fail(fmt::format("transfer {} ({} -> {}) names an action the trace does not have", k,
                                 to_string(transfer_ends[k].first), to_string(transfer_ends[k].second)));
        t.transfers[k].from = from->second;
        t.transfers[k].to = to->second;
      }
    }
  } catch (const json::exception& e) {
    throw fail(std::string("malformed trace: ") + e.what());
  }
  try {
    check_trace(t);
  } catch (const std::invalid_argument& e) {
    throw fail(e.what());
  }
  return t;
}

void write_chrome_trace(const Trace& t, const std::string& path) {
  write_file_atomic(path, to_chrome_json(t));
}

Trace read_chrome_trace(const std::string& path) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::runtime_error& e) {
    throw TraceFormatError(e.what());
  }
  return trace_from_chrome_json(text, path);
}

}  // namespace paci
