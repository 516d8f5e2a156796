// The trace format's Chrome/Perfetto JSON writer and reader, and the SVG timeline.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "schedules/trace/chrome.h"
#include "sim/svg.h"
#include "tests/sim/test_util.h"

namespace paci::testing {
namespace {

using nlohmann::json;

Trace sample_trace() {
  CostModel c = uniform(1, 2);
  c.latency = 0.125;
  c.stages[0].weight_bytes = 7;
  return simulate(gen("paci", 3, 4, 2, 0, 2), c).trace;
}

TEST(ChromeTrace, IsValidJsonWithTracksFlowsAndCounters) {
  Trace t = sample_trace();
  json j = json::parse(to_chrome_json(t));  // throws if not JSON
  ASSERT_TRUE(j["traceEvents"].is_array());
  size_t slices = 0, flows_s = 0, flows_f = 0, memory = 0, versions = 0;
  for (const auto& e : j["traceEvents"]) {
    std::string ph = e["ph"], name = e.value("name", "");
    if (ph == "X" && e["cat"] == "compute") ++slices;
    if (ph == "s") ++flows_s;
    if (ph == "f") ++flows_f;
    if (ph == "C" && name.rfind("memory", 0) == 0) ++memory;
    if (ph == "C" && name.rfind("version", 0) == 0) ++versions;
    if (ph == "X") {
      EXPECT_GE(e["dur"].get<double>(), 0);
      EXPECT_TRUE(e.contains("pid") && e.contains("tid") && e.contains("ts"));
    }
  }
  EXPECT_EQ(slices, t.actions.size());
  EXPECT_EQ(flows_s, t.transfers.size());
  EXPECT_EQ(flows_f, t.transfers.size());
  EXPECT_EQ(memory, t.memory.size());
  EXPECT_EQ(versions, 3u * 4u);  // 3 stages x 4 updates
}

TEST(ChromeTrace, RoundTripKeepsEveryRecordAndMetric) {
  Trace t = sample_trace();
  Trace back = trace_from_chrome_json(to_chrome_json(t), "test");
  EXPECT_EQ(back.schedule, t.schedule);
  EXPECT_EQ(back.spec, t.spec);
  EXPECT_EQ(back.accum, t.accum);
  EXPECT_EQ(back.stage_device, t.stage_device);
  ASSERT_EQ(back.actions.size(), t.actions.size());
  for (size_t k = 0; k < t.actions.size(); ++k) {
    EXPECT_EQ(back.actions[k].action, t.actions[k].action);
    EXPECT_EQ(back.actions[k].start, t.actions[k].start);
    EXPECT_EQ(back.actions[k].end, t.actions[k].end);
    EXPECT_EQ(back.actions[k].version, t.actions[k].version);
    EXPECT_EQ(back.actions[k].pos, t.actions[k].pos);
  }
  ASSERT_EQ(back.transfers.size(), t.transfers.size());
  for (size_t k = 0; k < t.transfers.size(); ++k) {
    EXPECT_EQ(back.transfers[k].from, t.transfers[k].from);
    EXPECT_EQ(back.transfers[k].to, t.transfers[k].to);
    EXPECT_EQ(back.transfers[k].src, t.transfers[k].src);
    EXPECT_EQ(back.transfers[k].dst, t.transfers[k].dst);
    EXPECT_EQ(back.transfers[k].start, t.transfers[k].start);
    EXPECT_EQ(back.transfers[k].end, t.transfers[k].end);
    EXPECT_EQ(back.transfers[k].bytes, t.transfers[k].bytes);
  }
  ASSERT_EQ(back.memory.size(), t.memory.size());
  EXPECT_EQ(back.static_memory[0].weights, 7);
  TraceMetrics a = compute_metrics(t), b = compute_metrics(back);
  EXPECT_DOUBLE_EQ(a.makespan, b.makespan);
  EXPECT_DOUBLE_EQ(a.bubble, b.bubble);
  EXPECT_NEAR(a.peak_memory, b.peak_memory, 1e-12);
  for (size_t s = 0; s < a.stages.size(); ++s) EXPECT_EQ(a.stages[s].max_drift, b.stages[s].max_drift);
}

TEST(ChromeTrace, ReaderRejectsOtherFilesWithOneLine) {
  EXPECT_THROW(trace_from_chrome_json("{not json", "x.json"), TraceFormatError);
  try {
    trace_from_chrome_json(R"({"traceEvents": []})", "other.json");
    FAIL();
  } catch (const TraceFormatError& e) {
    EXPECT_EQ(std::string(e.what()), "other.json: not a paci trace (no otherData.paci_trace header)");
  }
}

// A small well-formedness check: every tag closes in order, attributes are quoted, and
// only the five XML entities appear.
bool well_formed(const std::string& x, std::string* why) {
  std::vector<std::string> stack;
  size_t i = 0;
  while (i < x.size()) {
    if (x[i] == '&') {
      size_t semi = x.find(';', i);
      std::string ent = x.substr(i, semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;")
        return *why = "bad entity " + ent, false;
      i = semi + 1;
      continue;
    }
    if (x[i] != '<') { ++i; continue; }
    size_t end = x.find('>', i);
    if (end == std::string::npos) return *why = "unterminated tag", false;
    std::string tag = x.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1)) return *why = "mismatched </" + tag.substr(1) + ">", false;
      stack.pop_back();
      continue;
    }
    bool self = tag.back() == '/';
    std::string name = tag.substr(0, tag.find_first_of(" /"));
    size_t quotes = std::count(tag.begin(), tag.end(), '"');
    if (quotes % 2) return *why = "odd quotes in <" + name + ">", false;
    if (tag.find('<') != std::string::npos) return *why = "'<' inside a tag", false;
    if (!self) stack.push_back(name);
  }
  if (!stack.empty()) return *why = "unclosed <" + stack.back() + ">", false;
  return true;
}

TEST(Svg, TimelineIsWellFormedAndDrawsEveryAction) {
  Trace a = sample_trace();
  CostModel c = uniform(1, 2);
  Trace b = simulate(gen("1f1b", 3, 4, 2), c).trace;
  std::string svg = timeline_svg({{&a, "paci <async> & co"}, {&b, "1f1b"}});
  std::string why;
  EXPECT_TRUE(well_formed(svg, &why)) << why;
  EXPECT_NE(svg.find("paci &lt;async&gt; &amp; co"), std::string::npos);
  size_t opt_ticks = 0, pos = 0;
  while ((pos = svg.find("#e45756\"><title>", pos)) != std::string::npos) ++opt_ticks, ++pos;
  EXPECT_EQ(opt_ticks, 3u * 4u + 3u * 2u);  // every OPT marked
  EXPECT_TRUE(well_formed("<a><b x=\"1\"/></a>", &why));
  EXPECT_FALSE(well_formed("<a><b></a>", &why));
}

TEST(Svg, LargeRunsAreCut) {
  CostModel c = uniform(1, 2);
  Trace t = simulate(gen("paci", 4, 64, 8), c).trace;
  SvgOptions o;
  o.max_actions = 500;
  std::string svg = timeline_svg({{&t, "big"}}, o);
  std::string why;
  EXPECT_TRUE(well_formed(svg, &why)) << why;
  EXPECT_NE(svg.find("of the run shown"), std::string::npos);
}

}  // namespace
}  // namespace paci::testing
