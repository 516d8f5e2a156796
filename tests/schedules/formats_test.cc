// JSON and CSV import/export round-trips, PyTorch-style CSV features, and the clear errors
// that malformed schedules get.
#include <optional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schedules/formats.h"
#include "schedules/graph.h"
#include "schedules/registry.h"
#include "schedules/validate.h"

namespace paci {
namespace {

using ::testing::HasSubstr;

std::vector<Schedule> library() {
  return {make_schedule("gpipe", {4, 6, 2}),         make_schedule("1f1b", {4, 8, 2}),
          make_schedule("paci", {4, 8, 2, std::nullopt, 2}),    make_schedule("interleaved-1f1b", {3, 6, 2, 3}),
          make_schedule("zb-h1", {4, 8, 2}),         make_schedule("pipedream", {4, 5, 2}),
          make_schedule("pipedream-2bw", {4, 4, 3})};
}

TEST(Formats, JsonRoundTripIsIdentical) {
  for (const Schedule& s : library()) {
    Schedule back = schedule_from_json(to_json(s), "mem.json");
    EXPECT_TRUE(back == s) << s.name;
    validate(back);
  }
}

// One-step schedules with the optimizer at the end (what PyTorch's CSV can hold) round-trip:
// the export leaves the OPT cells out and the import appends them. tests/schedules/torch_csv_test
// checks the cells against PyTorch's grammar; the other schedules are refused there.
std::vector<Schedule> one_step_library() {
  return {make_schedule("gpipe", {4, 6, 1}), make_schedule("1f1b", {4, 8, 1}),
          make_schedule("interleaved-1f1b", {3, 6, 1, 3}), make_schedule("zb-h1", {4, 8, 1}),
          make_schedule("paci", {4, 8, 1})};
}

TEST(Formats, CsvRoundTripIsIdentical) {
  for (const Schedule& s : one_step_library()) {
    CsvHints hints;
    hints.microbatches = s.spec.microbatches;
    hints.policy = s.policy;
    hints.name = s.name;
    Schedule back = schedule_from_csv(to_csv(s), "mem.csv", hints);
    Schedule expected = s;
    expected.bounds = {};  // CSV carries actions only
    EXPECT_TRUE(back == expected) << s.name;
    validate(back);
  }
}

TEST(Formats, OlderCsvWithOptCellsStillLoads) {
  // paci before issue 12 wrote 0OPT cells and several steps per file; such files still load.
  Schedule s = make_schedule("paci", {4, 8, 2, std::nullopt, 2});
  std::string csv;
  for (const auto& prog : s.programs) {
    for (size_t k = 0; k < prog.size(); ++k) csv += (k ? "," : "") + to_string(prog[k]);
    csv += "\n";
  }
  CsvHints hints;
  hints.microbatches = 8;
  Schedule back = schedule_from_csv(csv, "old.csv", hints);
  EXPECT_EQ(back.programs, s.programs);
  EXPECT_EQ(back.spec, s.spec);
  validate(back);
}

TEST(Formats, CsvInfersSpecWithoutHints) {
  Schedule s = make_schedule("1f1b", {4, 8, 1});
  Schedule back = schedule_from_csv(to_csv(s), "mem.csv");
  EXPECT_EQ(back.spec, s.spec);
  EXPECT_EQ(back.accum, 8);
  EXPECT_EQ(back.programs, s.programs);
  Schedule il = make_schedule("interleaved-1f1b", {2, 4, 1, 2});
  Schedule ilb = schedule_from_csv(to_csv(il), "mem.csv");
  EXPECT_EQ(ilb.stage_device, il.stage_device);
  EXPECT_EQ(ilb.spec.virtual_stages, 2);
}

TEST(Formats, PyTorchStyleCsvWithIdleCellsCompositesAndCommActions) {
  // Two ranks, one stage each, one step of 2 micro-batches (no OPT cells: one flush step).
  // Idle cells, a composite overlap cell, and communication actions PyTorch may list.
  const std::string csv =
      "0F0,0F1,,0SEND_F1,0B0,0B1\n"
      ",1RECV_F0,1F0,(1F1;1B0)OVERLAP_F_B,1B1\n";
  Schedule s = schedule_from_csv(csv, "torch.csv");
  ASSERT_EQ(s.devices(), 2);
  EXPECT_EQ(s.spec.microbatches, 2);
  EXPECT_EQ(s.spec.steps, 1);
  // The overlap cell of a forward and a whole backward is one FB action.
  std::vector<Action> r1 = {Fwd(1, 0), FwdBwd(1, 1, 1, 0), Bwd(1, 1), Opt(1)};
  EXPECT_EQ(s.programs[1], r1);
  validate(s);
}

TEST(Formats, CsvRankHoldingSeveralStagesGetsMapFromRows) {
  const std::string csv =
      "0F0,2F0,2B0,0B0\n"
      "1F0,3F0,3B0,1B0\n";
  Schedule s = schedule_from_csv(csv, "v.csv");
  EXPECT_EQ(s.stage_device, (std::vector<int>{0, 1, 0, 1}));
  EXPECT_EQ(s.spec.virtual_stages, 2);
  validate(s);
}

struct Malformed {
  const char* what;
  const char* text;   // CSV unless it starts with '{'
  const char* error;  // expected substring
};

TEST(Formats, MalformedInputsGiveClearErrors) {
  const Malformed cases[] = {
      {"cycle on one device", "0B0,0F0\n", "cycle at device 0, position 0: 0B0 needs 0F0"},
      {"missing backward", "0F0,0F1,0B0\n", "never runs 0B1"},
      {"duplicate action", "0F0,0F0,0B0\n", "device 0, position 1: 0F0 is a duplicate"},
      {"unknown action string", "0F0,0X0,0B0\n", "row 1, column 2: unknown action \"0X0\""},
      {"stage on two ranks", "0F0,0B0\n0F1,0B1\n", "stage 0 appears on rank 0 and rank 1"},
      {"deadlocking order", "0F0,0B0,0F1,0B1\n1F1,1B1,1F0,1B0\n",
       "deadlock at device 0, position 1: 0B0 waits for 1B0"},
      {"split and whole backward", "0F0,0B0,0I0,0W0\n", "use B, or I and W, not both"},
      {"truncated JSON", "{\"format\": 1, \"devices\": 2, \"virt", "not valid JSON"},
      {"JSON without programs",
       "{\"format\":1,\"devices\":1,\"virtual_stages\":1,\"microbatches\":1,\"steps\":1,"
       "\"accum\":1,\"policy\":\"current\",\"stage_device\":[0]}",
       "missing field \"programs\""},
      {"stage out of range (JSON)",
       "{\"format\":1,\"devices\":1,\"virtual_stages\":1,\"microbatches\":1,\"steps\":1,"
       "\"accum\":1,\"policy\":\"current\",\"stage_device\":[0],\"programs\":[[\"3F0\",\"0B0\",\"0OPT\"]]}",
       "3F0 names stage 3, but the schedule has 1 stages"},
      {"future JSON format", "{\"format\": 9}", "schedule format 9 is not supported"},
      {"OPT consumes the wrong batch", "0F0,0F1,0B0,0B1,0OPT,0OPT\n", "must apply the gradients"},
  };
  for (const Malformed& c : cases) {
    std::string text = c.text;
    try {
      Schedule s = text[0] == '{' ? schedule_from_json(text, "bad.json") : schedule_from_csv(text, "bad.csv");
      validate(s);
      ADD_FAILURE() << c.what << ": accepted";
    } catch (const FormatError& e) {
      EXPECT_THAT(e.what(), HasSubstr(c.error)) << c.what;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << c.what << ": one line";
    } catch (const ScheduleError& e) {
      EXPECT_THAT(e.what(), HasSubstr(c.error)) << c.what;
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << c.what << ": one line";
      EXPECT_THAT(e.context(), HasSubstr("device  0 |")) << c.what << ": timeline excerpt";
    }
  }
}

TEST(Formats, ErrorExcerptMarksTheOffendingAction) {
  try {
    validate(schedule_from_csv("0F0,0B0,0F1,0B1\n1F1,1B1,1F0,1B0\n", "d.csv"));
    FAIL() << "deadlock accepted";
  } catch (const ScheduleError& e) {
    EXPECT_THAT(e.context(), HasSubstr(">>0B0<<"));
    EXPECT_THAT(e.what(), HasSubstr("device 1 is stuck at position 0 (1F1) waiting for 0F1"));
  }
}

TEST(Formats, DeclaredBoundIsChecked) {
  Schedule s = make_schedule("paci", {4, 4, 2, std::nullopt, 1});
  s.bounds.max_drift = {1, 1, 1, 0};  // true bound is 3, 2, 1, 0
  try {
    validate(s);
    FAIL() << "violated bound accepted";
  } catch (const ScheduleError& e) {
    EXPECT_THAT(e.what(), HasSubstr("stage 0: max drift 3 exceeds the bound 1"));
  }
}

TEST(Formats, SaveAndLoadByExtension) {
  const std::string dir = ::testing::TempDir();
  Schedule s = make_schedule("paci", {3, 4, 2});
  save_schedule(s, dir + "/p.json");
  EXPECT_TRUE(load_schedule(dir + "/p.json") == s);
  EXPECT_THROW(save_schedule(s, dir + "/p.csv"), FormatError);  // two steps: JSON only
  Schedule one = make_schedule("1f1b", {3, 4, 1});
  save_schedule(one, dir + "/p.csv");
  EXPECT_EQ(load_schedule(dir + "/p.csv").programs, one.programs);
  EXPECT_THROW(save_schedule(s, dir + "/p.txt"), FormatError);
  EXPECT_THROW(load_schedule(dir + "/missing.json"), FormatError);
}

TEST(Registry, ParameterErrorsNameTheFlag) {
  struct Case { const char* name; ScheduleParams p; const char* flag; };
  const Case cases[] = {
      {"1f1b", {0, 4}, "--stages"},
      {"1f1b", {4, 0}, "--microbatches"},
      {"1f1b", {4, 4, 0}, "--steps"},
      {"paci", {4, 4, 1, std::nullopt, 3}, "--accum"},
      {"paci", {4, 4, 1, std::nullopt, -1}, "--accum"},
      {"paci", {4, 4, 1, std::nullopt, 0}, "--accum"},
      {"nope", {4, 4}, "--schedule"},
      {"interleaved-1f1b", {4, 6, 1, 2}, "--microbatches"},
      {"interleaved-1f1b", {4, 8, 1, 100}, "--virtual"},
      {"gpipe", {4, 8, 1, 2}, "--virtual"},
      {"pipedream-2bw", {8, 4}, "--microbatches"},
      {"zb-2p", {4, 8}, "--schedule"},
  };
  for (const Case& c : cases) {
    try {
      make_schedule(c.name, c.p);
      ADD_FAILURE() << c.name << " accepted";
    } catch (const ParamError& e) {
      EXPECT_EQ(e.flag(), c.flag) << e.what();
      EXPECT_THAT(e.what(), HasSubstr(c.flag));
    }
  }
}

}  // namespace
}  // namespace paci
