// Chrome / Perfetto trace-event JSON for a Trace (load it in ui.perfetto.dev or
// chrome://tracing). One process per device with three tracks: compute (a slice per action,
// coloured by kind in Perfetto's palette via its name), send and recv (a slice per
// transfer on each side, with a flow arrow from the send slice to the recv slice). Memory
// and each stage's weight version are counters. The file carries every field of the Trace
// (exact seconds in each slice's args, the header in "otherData"), so read_chrome_trace
// gives the same Trace back: a measured trace written by the executor can be re-read and
// measured with the same metrics.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "schedules/trace/trace.h"

namespace paci {

// A file that is not a paci trace: what() is one line "<source>: <what is wrong>".
class TraceFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::string to_chrome_json(const Trace& t);
Trace trace_from_chrome_json(std::string_view text, const std::string& source);

// Writes atomically (schedules/files.h), so a failed write leaves no half file.
void write_chrome_trace(const Trace& t, const std::string& path);
Trace read_chrome_trace(const std::string& path);

}  // namespace paci
