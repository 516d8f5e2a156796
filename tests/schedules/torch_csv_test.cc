// paci's CSV export is what torch.distributed.pipelining can load (issue 12, item 6).
//
// PyTorch's loader (schedules.py, `_PipelineScheduleRuntime._load_csv` and `_Action.from_str`)
// reads the file with Python's csv module, one row per rank, and turns every cell into an action.
// Its rules, in our words:
//   - csv: cells are separated by commas; a cell that starts with a double quote runs to the next
//     lone double quote ("" inside stands for one quote); records end at LF or CRLF.
//   - a cell is stripped of surrounding white space; an empty cell is an idle slot;
//   - a cell "(A;B;...)KIND" is a composite: its parts between the parentheses, split at ';', are
//     actions themselves, and KIND must name a computation type (OVERLAP_F_B);
//   - any other cell must be: a stage index (digits), then one computation type out of F, I, B,
//     W, UNSHARD, RESHARD, REDUCE_GRAD, SEND_F, RECV_F, SEND_B, RECV_B, then an optional
//     micro-batch index (digits); nothing else may follow. F, I, B and W need the micro-batch.
// So "0OPT" is rejected (no computation type starts with O). The test below re-implements these
// rules independently of paci's importer, checks every exported cell against them, and then
// round-trips the file through paci's importer.
#include <regex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schedules/formats.h"
#include "schedules/registry.h"
#include "schedules/validate.h"

namespace paci {
namespace {

using ::testing::HasSubstr;

// Python csv.reader's default dialect, enough for what a schedule file holds.
std::vector<std::vector<std::string>> python_csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') cell += '"', ++i;
      else if (c == '"') quoted = false;
      else cell += c;
    } else if (c == '"') {
      quoted = true, any = true;
    } else if (c == ',') {
      row.push_back(cell), cell.clear(), any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(cell), cell.clear();
      rows.push_back(row), row.clear();
      any = false;
    } else {
      cell += c, any = true;
    }
  }
  if (any) row.push_back(cell), rows.push_back(row);
  return rows;
}

struct TorchAction {
  int stage;
  std::string type;
  int microbatch;  // -1: none
};

// PyTorch's action grammar (see the header comment); throws on a cell PyTorch would reject.
std::vector<TorchAction> torch_parse(std::string cell) {
  static const std::regex simple(R"((\d+)(F|I|B|W|UNSHARD|RESHARD|REDUCE_GRAD|SEND_F|RECV_F|SEND_B|RECV_B)(\d*))");
  static const std::regex composite(R"(\((.*)\)(OVERLAP_F_B))");
  const auto first = cell.find_first_not_of(" \t"), last = cell.find_last_not_of(" \t");
  cell = first == std::string::npos ? "" : cell.substr(first, last - first + 1);
  if (cell.empty()) return {};
  std::smatch m;
  if (std::regex_match(cell, m, composite)) {
    std::vector<TorchAction> out;
    std::string inner = m[1];
    size_t at = 0;
    while (at <= inner.size()) {
      size_t semi = inner.find(';', at);
      if (semi == std::string::npos) semi = inner.size();
      for (const auto& a : torch_parse(inner.substr(at, semi - at))) out.push_back(a);
      at = semi + 1;
    }
    return out;
  }
  if (!std::regex_match(cell, m, simple)) throw std::invalid_argument("PyTorch rejects the cell '" + cell + "'");
  TorchAction a{std::stoi(m[1]), m[2], m[3].length() ? std::stoi(m[3]) : -1};
  const bool compute = a.type == "F" || a.type == "I" || a.type == "B" || a.type == "W";
  if (compute && a.microbatch < 0) throw std::invalid_argument("compute action without micro-batch: " + cell);
  return {a};
}

std::vector<Schedule> torch_expressible() {
  return {make_schedule("1f1b", {4, 8, 1}), make_schedule("gpipe", {4, 6, 1}),
          make_schedule("interleaved-1f1b", {2, 4, 1, 2}), make_schedule("interleaved-1f1b", {3, 6, 1, 3}),
          make_schedule("zb-h1", {4, 8, 1})};
}

TEST(TorchCsv, ExportedCellsFollowPyTorchsGrammarAndRoundTrip) {
  for (const Schedule& s : torch_expressible()) {
    const std::string csv = to_csv(s);
    EXPECT_EQ(csv.find("OPT"), std::string::npos) << s.name;
    const auto rows = python_csv_rows(csv);
    ASSERT_EQ(static_cast<int>(rows.size()), s.devices()) << s.name;
    // PyTorch's pipeline_order: rank -> actions. Compare with paci's programs minus OPT.
    for (int d = 0; d < s.devices(); ++d) {
      std::vector<std::string> expected, got;
      for (const Action& a : s.programs[d])
        if (a.kind != ActionKind::OPT) expected.push_back(to_string(a));
      for (const std::string& cell : rows[d]) {
        std::vector<TorchAction> parsed;
        ASSERT_NO_THROW(parsed = torch_parse(cell)) << s.name << " rank " << d << " cell '" << cell << "'";
        for (const TorchAction& a : parsed) {
          EXPECT_EQ(s.stage_device[a.stage], d) << s.name << ": stage " << a.stage << " on rank " << d;
          got.push_back(std::to_string(a.stage) + a.type + std::to_string(a.microbatch));
        }
      }
      EXPECT_EQ(got, expected) << s.name << " rank " << d;
    }
    // Round trip through paci's importer: the same schedule, OPTs appended after each rank's work.
    CsvHints hints;
    hints.name = s.name;
    Schedule back = schedule_from_csv(csv, "torch.csv", hints);
    validate(back);
    EXPECT_EQ(back.spec, s.spec) << s.name;
    EXPECT_EQ(back.stage_device, s.stage_device) << s.name;
    EXPECT_EQ(back.accum, s.accum) << s.name;
    EXPECT_EQ(to_csv(back), csv) << s.name;
    Analysis a = validate(s), b = validate(back);
    for (int st = 0; st < s.stages(); ++st) {
      EXPECT_EQ(a.stages[st].max_drift, b.stages[st].max_drift) << s.name;
      EXPECT_EQ(a.stages[st].updates, b.stages[st].updates) << s.name;
    }
  }
}

TEST(TorchCsv, QuotedCellsBomAndCrlfAreReadAsPythonsCsvModuleReadsThem) {
  const std::string plain = to_csv(make_schedule("1f1b", {2, 3, 1}));
  std::string fancy = "\xEF\xBB\xBF";
  for (const auto& row : python_csv_rows(plain)) {
    for (size_t k = 0; k < row.size(); ++k) fancy += (k ? "," : "") + ("\"" + row[k] + "\"");
    fancy += ",\"\"\r\n";  // an idle quoted cell at the end of every row
  }
  EXPECT_EQ(schedule_from_csv(fancy, "fancy.csv").programs, schedule_from_csv(plain, "plain.csv").programs);
}

TEST(TorchCsv, WhatPyTorchCannotExpressIsRefusedWithOneLine) {
  struct Case {
    Schedule s;
    const char* why;
  };
  const Case cases[] = {
      {make_schedule("paci", {4, 8, 1, std::nullopt, 2}), "stage 0 computes 0F"},
      {make_schedule("paci", {4, 8, 2}), "updates happen inside the schedule (2 steps)"},
      {make_schedule("pipedream", {3, 4, 1}), "(no flush)"},
      {make_schedule("1f1b", {4, 8, 2}), "(2 steps)"},
      {make_schedule("pipedream-2bw", {2, 2, 2}), "inside the schedule"},
  };
  for (const Case& c : cases) {
    try {
      to_csv(c.s);
      ADD_FAILURE() << c.s.name << ": exported";
    } catch (const FormatError& e) {
      EXPECT_THAT(e.what(), HasSubstr("cannot be written as a PyTorch CSV")) << c.s.name;
      EXPECT_THAT(e.what(), HasSubstr(c.why)) << c.s.name;
      EXPECT_THAT(e.what(), HasSubstr("write .json for the full IR")) << c.s.name;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
    // The full IR stays available as JSON.
    EXPECT_TRUE(schedule_from_json(to_json(c.s), "x.json") == c.s) << c.s.name;
  }
}

}  // namespace
}  // namespace paci
