// Bad input to `paci show` / `paci sim` / `paci calibrate` (issue 12, item 4): schedule files,
// cost files, calibrations and flags. Each case: exit 2, one line naming the input and what is
// allowed, within kBadInputSeconds and 2 GiB of address space, no output file left behind.
#include <sys/stat.h>

#include <map>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/schedules/bad_input.h"
#include "tests/support/cli_runner.h"

namespace paci::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string dir() {
  static const std::string d = [] {
    std::string p = fresh_path("bad-input");
    std::filesystem::create_directories(p);
    return p;
  }();
  return d;
}

std::string file(const std::string& name, const std::string& text) { return write_text(dir() + "/" + name, text); }

std::string fifo(const std::string& name) {
  std::string p = dir() + "/" + name;
  std::filesystem::remove(p);
  mkfifo(p.c_str(), 0644);
  return p;
}

std::string folder(const std::string& name) {
  std::string p = dir() + "/" + name;
  std::filesystem::create_directories(p);
  return p;
}

// A valid schedule JSON (1f1b, 2 devices, 2 micro-batches, 10 actions) with one field replaced.
std::string schedule_json(const std::string& field, const std::string& value) {
  std::map<std::string, std::string> f = {
      {"devices", "2"}, {"virtual_stages", "1"}, {"microbatches", "2"}, {"steps", "1"}, {"accum", "2"},
      {"policy", "\"current\""}, {"stage_device", "[0, 1]"},
      {"programs", R"([["0F0", "0F1", "0B0", "0B1", "0OPT"], ["1F0", "1B0", "1F1", "1B1", "1OPT"]])"}};
  f[field] = value;
  std::string j = R"({"format": 1, "kind": "paci-schedule", "name": "1f1b")";
  for (const auto& [k, v] : f) j += fmt::format(", \"{}\": {}", k, v);
  return j + "}";
}

constexpr const char* kCalibration = R"({"format": "paci-calibration", "version": 1, "source": "test",
  "micro_batch": 4, "seq_len": 64, "layers": 2, "boundary_bytes": 65536,
  "stage": {"f": 0.001, "b": 0.0007, "i": 0, "w": 0.0005, "activation_bytes": 131072, "params": 0},
  "embedding": {"f": 0, "b": 0, "i": 0.0001, "w": 0, "activation_bytes": 1024, "params": 3220544},
  "layer": {"f": 0.002, "b": 0.0013, "i": 0.001, "w": 0, "activation_bytes": 2035712, "params": 49984},
  "head": {"f": 0.056, "b": 0.057, "i": 0.028, "w": 0.027, "activation_bytes": 51598336, "params": 3216576},
  "opt_seconds_per_param": 1.2e-9, "latency": 0, "bandwidth": 4.9e10, "bytes_per_param": 4})";

std::string calibration(const std::string& from, const std::string& to) {
  std::string c = kCalibration;
  size_t at = c.find(from);
  return at == std::string::npos ? c : c.replace(at, from.size(), to);
}

constexpr const char* kSim = "sim --schedule 1f1b -P 2 -M 2";

TEST(BadInput, SchedulesFixtureIsValid) {
  auto ok = run_paci(fmt::format("show --file {}", file("ok.json", schedule_json("steps", "1"))));
  ASSERT_EQ(ok.code, 0) << ok.err;
  ok = run_paci(fmt::format("sim --schedule 1f1b -P 2 -M 2 --cost-file {}", file("cal-ok.json", kCalibration)));
  ASSERT_EQ(ok.code, 0) << ok.err;
}

TEST(BadInput, FifosAndDirectoriesWhereAFileIsRead) {
  expect_refused(fmt::format("show --file {}", fifo("fifo.csv")), "fifo.csv: is a FIFO; a regular file is required");
  expect_refused(fmt::format("show --file {}", fifo("fifo.json")), "fifo.json: is a FIFO");
  expect_refused(fmt::format("show --file {}", folder("dir.json")), "dir.json: is a directory");
  expect_refused(fmt::format("sim --file {}", folder("dir.csv")), "dir.csv: is a directory");
  expect_refused(fmt::format("{} --cost-file {}", kSim, fifo("cost.json")), "--cost-file " + dir() + "/cost.json: is a FIFO");
  expect_refused(fmt::format("{} --cost-file {}", kSim, folder("costdir.json")), "costdir.json: is a directory");
  expect_refused(fmt::format("compare --model tiny --calibration {}", fifo("cal.json")), "--calibration " + dir() + "/cal.json: is a FIFO");
}

TEST(BadInput, HugeIdsAndSizesInSmallFiles) {
  // 54 bytes that used to allocate 5 GB: ids are bounded by the actions the file holds.
  const std::string big_mb = "0F0,0B0,0F1,0B1\n1F0,1B0,1F1,1B1,1F1000000000,1B100000\n";
  ASSERT_EQ(big_mb.size(), 54u);
  expect_refused(fmt::format("show --file {}", file("big-mb.csv", big_mb)),
                 "names micro-batch 1000000000, but the file holds only 10 actions");
  expect_refused(fmt::format("show --file {}", file("big-stage.csv", "1073741823B0\n")),
                 "names stage 1073741823, but the file holds only 1 actions");
  expect_refused(fmt::format("show --file {}", file("beyond-int.csv", "0F99999999999,0B0\n")), "unknown action \"0F99999999999\"");
  expect_refused(fmt::format("show --file {}", file("m1e9.json", schedule_json("microbatches", "1e9"))),
                 "field \"microbatches\" must be an integer in 1..10 (got 1000000000.0)");
  expect_refused(fmt::format("show --file {}", file("mwrap.json", schedule_json("microbatches", "4294967300"))),
                 "field \"microbatches\" must be an integer in 1..10 (got 4294967300)");
  expect_refused(fmt::format("show --file {}", file("dev.json", schedule_json("devices", "99999999999"))),
                 "field \"devices\" must be an integer in 1..10 (got 99999999999)");
  expect_refused(fmt::format("show --file {}", file("steps.json", schedule_json("steps", "3"))),
                 "need at least 12 forwards, but \"programs\" holds 10 actions");
  expect_refused(fmt::format("show --file {}", file("negdev.json", schedule_json("stage_device", "[0, -1]"))),
                 "field \"stage_device[1]\" must be an integer in 0..1 (got -1)");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cal-layers1.json", calibration("\"layers\": 2", "\"layers\": 2e9"))),
                 "\"layers\" must be an integer in 0..100000 (got 2000000000.0)");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cal-layers2.json", calibration("\"layers\": 2", "\"layers\": 1000000000000"))),
                 "\"layers\" must be an integer in 0..100000 (got 1000000000000)");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cal-mb.json", calibration("\"micro_batch\": 4", "\"micro_batch\": -4"))),
                 "\"micro_batch\" must be an integer in 1..");
}

TEST(BadInput, JsonLibraryErrorsNameTheFileAndField) {
  expect_refused(fmt::format("show --file {}", file("overflow.json", schedule_json("steps", "1e999"))),
                 "overflow.json: a number in the JSON is out of range");
  expect_refused(fmt::format("show --file {}", file("policy.json", schedule_json("policy", "3"))),
                 "policy.json: field \"policy\" must be a string (got number)");
  expect_refused(fmt::format("show --file {}", file("cell.json", schedule_json("programs", R"([[3, "0F1", "0B0", "0B1", "0OPT"], ["1F0", "1B0", "1F1", "1B1", "1OPT"]])"))),
                 "cell.json: programs[0][0]: unknown action \"3\"");
  expect_refused(fmt::format("show --file {}", file("sd.json", schedule_json("stage_device", "\"x\""))),
                 "sd.json: field \"stage_device\" must be an array of 2 integers");
  expect_refused(fmt::format("show --file {}", file("top.json", "[1, 2]")), "top.json: a paci schedule JSON is an object");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cost-overflow.json", R"({"format": "paci-cost", "version": 1, "default": {"f": 1e999}})")),
                 "cost-overflow.json: a number in the JSON is out of range");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cost-format.json", R"({"format": 3, "version": 1})")),
                 "cost-format.json: format: must be \"paci-cost\"");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cost-unit.json", R"({"format": "paci-cost", "version": 1, "memory_unit": 5, "default": {}})")),
                 "cost-unit.json: memory_unit: must be a string (got number)");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cost-desc.json", R"({"format": "paci-cost", "version": 1, "description": [1], "default": {}})")),
                 "cost-desc.json: description: must be a string (got array)");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cost-neg.json", R"({"format": "paci-cost", "version": 1, "default": {"f": -1}})")),
                 "cost-neg.json: default.f: must be a finite number >= 0 (got -1)");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cal-overflow.json", calibration("\"latency\": 0", "\"latency\": 1e999"))),
                 "cal-overflow.json: a number in the JSON is out of range");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cal-version.json", calibration("\"version\": 1", "\"version\": \"x\""))),
                 "cal-version.json: calibration version \"x\" is not supported");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cal-source.json", calibration("\"source\": \"test\"", "\"source\": 7"))),
                 "cal-source.json: \"source\" must be a string");
}

TEST(BadInput, CalibrationCostsMustBePositiveAndFinite) {
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cal-opt.json", calibration("\"opt_seconds_per_param\": 1.2e-9", "\"opt_seconds_per_param\": -1"))),
                 "\"opt_seconds_per_param\" must be finite, >= 0");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cal-huge.json", calibration("\"f\": 0.056", "\"f\": 1e300"))),
                 "cal-huge.json: head.\"f\" must be finite, and at most 1e+18 in magnitude");
  // Every stage would take no time: refused, not simulated as zero.
  std::string zero = calibration("\"f\": 0.056", "\"f\": -0.059");
  expect_refused(fmt::format("{} --cost-file {}", kSim, file("cal-zero.json", zero)),
                 "cal-zero.json: the whole model on one stage would take F = ");
  expect_refused(fmt::format("sim --schedule 1f1b -P 3 -M 3 --cost-file {}",
                             file("cal-stage.json", calibration("\"f\": 0.001, \"b\": 0.0007", "\"f\": -0.0021, \"b\": 0.0007"))),
                 "would take F = ");
}

TEST(BadInput, BigFilesStayWithinMemory) {
  // 50 MB of commas (50 M empty cells): read cell by cell, not as 50 M strings.
  expect_refused(fmt::format("show --file {}", file("commas.csv", std::string(50 << 20, ','))),
                 "commas.csv: no rows: a schedule CSV has one row per rank");
  // Over the 64 MiB a schedule file may have: refused before reading (a sparse file).
  const std::string huge = file("huge.json", "{}");
  std::filesystem::resize_file(huge, int64_t{65} << 20);
  expect_refused(fmt::format("show --file {}", huge), "huge.json: 68157440 bytes, more than the 64 MiB paci reads");
}

TEST(BadInput, CsvCellsFollowPyTorchsGrammar) {
  expect_refused(fmt::format("show --file {}", file("garbage.csv", "(0F0;0B0)GARBAGE\n")),
                 "composite cell of unknown kind (allowed: OVERLAP_F_B) \"(0F0;0B0)GARBAGE\"");
  expect_refused(fmt::format("show --file {}", file("nokind.csv", "(0F0;0B0)\n")), "composite cell without a kind \"(0F0;0B0)\"");
  expect_refused(fmt::format("show --file {}", file("empty-composite.csv", "0F0,();OVERLAP_F_B,0B0\n")), "row 1, column 2");
  expect_refused(fmt::format("show --file {}", file("unclosed.csv", "0F0,\"0B0\n")), "unclosed.csv: row 1, column 2: a quoted cell is not closed");
  expect_refused(fmt::format("show --file {}", file("after-quote.csv", "\"0F0\"x,0B0\n")), "text after the closing quote");
  expect_refused(fmt::format("show --file {}", file("blank-row.csv", "\n0F0,0B0\n")), "row 1 has no actions");
  // Quoted cells, "" escapes, CRLF and a UTF-8 BOM are what Python's csv module reads: accepted.
  auto r = run_paci(fmt::format("show --file {}", file("quoted.csv", "\xEF\xBB\xBF\"0F0\",\"0F1\",0B0,\"0B1\"\r\n")));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("1 devices x 1 virtual = 1 stages, 2 micro-batches"));
}

TEST(BadInput, MessagesTruncateAndEscapeWhatTheyEcho) {
  const std::string cell(10 << 20, 'X');
  auto r = expect_refused(fmt::format("show --file {}", file("huge-cell.csv", "0F0," + cell + "\n")),
                          "row 1, column 2: a cell of more than 4096 characters");
  EXPECT_THAT(r.err, HasSubstr("XXXX... (4097 bytes)"));
  r = expect_refused(fmt::format("show --file {}", file("binary.csv", std::string("0F0,0B\0\x01\xff\x7f" "zz\n", 12))),
                     "binary.csv: row 1, column 2: unknown action \"0B\\x00\\x01\\xff\\x7fzz\"");
  r = expect_refused(fmt::format("show --file {}", file("long-policy.json", schedule_json("policy", "\"" + std::string(100000, 'p') + "\""))),
                     "unknown weight policy \"pppp");
  EXPECT_THAT(r.err, HasSubstr("... (100000 bytes)"));
  r = expect_refused(fmt::format("{} --cost '{}=1'", kSim, std::string(5000, 'k')), "--cost: unknown key 'kkkk");
  EXPECT_THAT(r.err, HasSubstr("... (5000 bytes)"));
}

TEST(BadInput, SimFlagsAreRangeChecked) {
  const std::string m = "sim --schedule 1f1b -P 2 -M 2 --model gpt2-124m";
  expect_refused(m + " --link-bw nan", "--link-bw must be in (0, 1e9] GB/s (got nan)");
  expect_refused(m + " --link-bw -5", "--link-bw must be in (0, 1e9] GB/s (got -5)");
  expect_refused(m + " --link-latency nan", "--link-latency must be in 0..1e9 microseconds (got nan)");
  expect_refused(m + " --efficiency nan", "--efficiency must be in (0, 1]");
  expect_refused(std::string(kSim) + " --jitter 1e6", "--jitter must be in 0..2");
  expect_refused(std::string(kSim) + " --jitter nan", "--jitter must be in 0..2");
  expect_refused(std::string(kSim) + " --memory-limit inf", "--memory-limit must be a finite number");
  expect_refused(std::string(kSim) + " --cost f=inf", "--cost: f must be a finite number >= 0 (got inf)");
  expect_refused(std::string(kSim) + " --straggler 0=nan", "--straggler: '0=nan' is not STAGE=FACTOR");
  expect_refused(std::string(kSim) + " --straggler 0=1e9", "--straggler 0=1e9: the factor must be in (0, 1000]");
  expect_refused(std::string(kSim) + " --straggler 5=2", "--straggler 5=2: the stage must be in 0..1");
  expect_refused(std::string(kSim) + " --straggler -1=2", "is not STAGE=FACTOR");
  expect_refused("sim --compare 1f1b,paci -M 4 --sweep stages=1:2147483647:1", "is not an integer in 1..");
  expect_refused("sim --compare 1f1b,paci -M 4 --sweep stages=1:1000000:1", "--sweep stages: 1000000 values (allowed 1..1000)");
  expect_refused("sim --compare 1f1b -M 4 --sweep 'stages=" + std::string(3000, ',') + "2'", "values (allowed 1..1000)");
  expect_refused("sim -P 2 -M 2 --compare " + std::string(100000, 'a'), "--compare: '" + std::string(40, 'a') + "...");
  expect_refused("sim --schedule zb-1p -P 100000 -M 2", "--stages must be <= 4096");
  expect_refused("sim --schedule 1f1b -P 2 -M 2 --mb-size 0 --model gpt2-124m", "--mb-size must be in 1..");
}

TEST(BadInput, OutputsAreCheckedBeforeTheWork) {
  const std::string csv = dir() + "/paci.csv", trace = dir() + "/t.json";
  // PyTorch's CSV cannot hold a schedule with updates inside it: refused before any file is written.
  expect_refused(fmt::format("show --schedule paci -P 4 -M 4 -N 2 --export {}", csv),
                 "schedule 'paci' cannot be written as a PyTorch CSV", {csv});
  expect_refused(fmt::format("sim --schedule pipedream -P 3 -M 4 --trace {} --export {}", trace, csv),
                 "cannot be written as a PyTorch CSV", {csv, trace});
  expect_refused(fmt::format("{} --json /proc/nonexistent/x.json", kSim), "--json /proc/nonexistent/x.json: cannot write there");
  expect_refused(fmt::format("{} --trace {}", kSim, folder("trace-dir")), "--trace " + dir() + "/trace-dir: is a directory");
  // calibrate measures for minutes before it writes: the path is checked first.
  auto r = expect_refused("calibrate --model tiny -o /proc/x", "--out /proc/x: cannot write there", {"/proc/x"});
  EXPECT_LT(r.seconds, 5);
  EXPECT_THAT(r.out, Not(HasSubstr("measuring")));
}

}  // namespace
}  // namespace paci::testing
