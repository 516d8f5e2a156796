// Whole-file reads and atomic writes, shared by every module that reads or writes user files
// (schedules, traces, cost models, data shards, checkpoints).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace paci {

// A user input (a file, a flag value) that cannot be used: what() is one line naming the input
// and what is allowed. `paci` exits 2 on it. The parsers' own error types (FormatError,
// CostError, CalibrationError, ShardError, ...) are the other errors a parser may throw; any
// other exception escaping a parser is a bug (the fuzz harnesses in tests/fuzz report it).
class InputError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Largest input file paci reads whole by default (cost files, calibrations): 256 MiB.
inline constexpr int64_t kMaxInputFileBytes = int64_t{256} << 20;

// Throws InputError "<what> <path>: ..." unless `path` names an existing regular file (not a
// directory, FIFO, socket or device: a FIFO would block the reader forever). Returns its size.
int64_t check_regular_file(const std::string& path, const std::string& what);

// read_file for user inputs: checks it is a regular file of at most max_bytes first, and opens
// it without blocking. Throws InputError naming `what` and the path.
std::string read_input_file(const std::string& path, const std::string& what,
                            int64_t max_bytes = kMaxInputFileBytes);

// Throws InputError "<flag> <path>: cannot write there (...)" unless a file can be created at
// `path` (its directory exists or can be created, and is writable; `path` is not a directory).
// Leaves nothing behind. Call it before long work so that a bad output path fails first.
void check_output_writable(const std::string& path, const std::string& flag);

// A piece of user input for an error message: at most `max_chars` characters (then "... (N
// bytes)"), with non-printable bytes escaped as \xNN; no quotes added.
std::string excerpt(std::string_view text, size_t max_chars = 40);

// Reads a whole file; throws std::runtime_error "<path>: cannot open (<reason>)".
std::string read_file(const std::string& path);

// Writes `bytes` to a temporary file next to `path`, flushes it and renames it over `path`,
// so a reader (or a crash) never sees a half-written file. Creates missing parent
// directories. Throws std::runtime_error naming the path on failure.
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace paci
