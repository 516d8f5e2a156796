// Small file helpers shared by the data pipeline: whole-file reads and atomic writes.
#ifndef PACI_EXEC_DATA_FILE_UTIL_H_
#define PACI_EXEC_DATA_FILE_UTIL_H_

#include <string>
#include <string_view>

namespace paci {

// Reads a whole file; throws std::runtime_error "<path>: cannot open (<reason>)".
std::string read_file(const std::string& path);

// Writes `bytes` to a temporary file next to `path`, flushes it and renames it over `path`, so a
// reader (or a crash) never sees a half-written file. Creates missing parent directories.
// Throws std::runtime_error naming the path on failure.
void write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace paci

#endif  // PACI_EXEC_DATA_FILE_UTIL_H_
