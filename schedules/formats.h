// Schedule files: JSON (the whole IR, versioned) and CSV in PyTorch's
// torch.distributed.pipelining action-string format (one row per rank).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "schedules/ir.h"

namespace paci {

inline constexpr int kScheduleFormatVersion = 1;

// Largest schedule file paci reads: 64 MiB (about 10 million actions).
inline constexpr int64_t kMaxScheduleFileBytes = int64_t{64} << 20;

// A malformed schedule file: what() is one line "<source>: <where>: <what is wrong>".
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string to_json(const Schedule& s);
Schedule schedule_from_json(std::string_view text, const std::string& source);

// CSV holds only the actions, in PyTorch's torch.distributed.pipelining format: a row per
// rank, cells such as 0F1, 1B0, 2I3, 2W3; empty cells are idle; composite cells
// (0F7;7B3)OVERLAP_F_B load as their sub-actions; communication and sharding actions
// (SEND_F, RECV_B, UNSHARD, RESHARD, REDUCE_GRAD) are derived from the dependencies and
// skipped. Cells follow RFC 4180 as Python's csv module reads them (quoted cells, "" for a
// quote, CRLF or LF); a UTF-8 BOM is skipped. On import the stage-to-rank map comes from the
// rows (as PyTorch infers it); a file without OPT cells is one flush step, with each stage's
// OPT appended at the end of its rank's row; paci's own 0OPT cells (older paci exports) are
// still read. Sizes are bounded by the file: stage and micro-batch ids must be below the
// number of actions A, and stages x micro-batches <= A.
//
// to_csv writes what PyTorch's loader accepts: one step with the optimizer outside, i.e.
// every stage updates at most once and only after all its work (gpipe, 1f1b,
// interleaved-1f1b, zb-h1 with one step); OPT cells are left out. Anything else (no-flush
// schedules such as paci and pipedream, several steps) throws FormatError naming the reason:
// write JSON, which holds the whole IR.
std::string to_csv(const Schedule& s);
struct CsvHints {
  std::optional<int> microbatches;          // M per step (default: inferred, see below)
  std::optional<WeightPolicy> policy;       // default: current
  std::optional<std::string> name;          // default: "imported"
};
// Without hints, M is the accumulation window (micro-batches per OPT), N the OPTs per stage.
Schedule schedule_from_csv(std::string_view text, const std::string& source,
                           const CsvHints& hints = {});

// By extension (.json or .csv). load_schedule validates what it reads (throws
// ScheduleError); save_schedule writes a temporary file and renames it into place.
Schedule load_schedule(const std::string& path, const CsvHints& hints = {});
void save_schedule(const Schedule& s, const std::string& path);

// Parses one action string ("0F1", "3OPT"); nullopt if it is not one.
std::optional<Action> parse_action(std::string_view text);

}  // namespace paci
