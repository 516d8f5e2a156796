// Schedule files: JSON (the whole IR, versioned) and CSV in PyTorch's
// torch.distributed.pipelining action-string format (one row per rank).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "schedules/ir.h"

namespace paci {

inline constexpr int kScheduleFormatVersion = 1;

// A malformed schedule file: what() is one line "<source>: <where>: <what is wrong>".
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string to_json(const Schedule& s);
Schedule schedule_from_json(std::string_view text, const std::string& source);

// CSV holds only the actions: a row per rank, cells such as 0F1, 1B0, 2I3, 2W3 and 0OPT;
// empty cells are idle; composite cells such as (0F7;7B3)OVERLAP_F_B load as their
// sub-actions; communication and sharding actions (SEND_F, RECV_B, UNSHARD, ...) are
// derived from the dependencies and skipped. On import the stage-to-rank map comes from
// the rows (as PyTorch infers it); a file without OPT cells is one flush step, with each
// stage's OPT appended at the end of its rank's row.
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
