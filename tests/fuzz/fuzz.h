// The shared part of paci's libFuzzer harnesses (tests/fuzz/README.md).
//
// A harness is one file tests/fuzz/<name>_fuzz.cc:
//
//   #include "tests/fuzz/fuzz.h"
//   #include "schedules/formats.h"
//   PACI_FUZZ(input) { paci::schedule_from_csv(input, "fuzz.csv"); }
//
// `input` is a std::string_view of the bytes. The parser may throw paci's own error types,
// listed in PACI_FUZZ_EXPECTED below; any other exception (an nlohmann error, std::out_of_range,
// std::bad_alloc, ...) escapes, std::terminate aborts and libFuzzer reports a crash. So do
// ASan / UBSan errors, allocations over -malloc_limit_mb and runs over -timeout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cli/common.h"
#include "exec/data/shard.h"
#include "exec/model/llmc_checkpoint.h"
#include "schedules/files.h"
#include "schedules/formats.h"
#include "schedules/registry.h"
#include "schedules/validate.h"
#include "sim/calibrate/calibration.h"
#include "sim/cost.h"

// The error types a parser may throw: each is a one-line message naming the input. A harness
// file may define PACI_FUZZ_EXTRA_CATCH (e.g. `catch (const paci::CheckpointError&) {}`) before
// including this header to allow one more of paci's own types.
#ifndef PACI_FUZZ_EXTRA_CATCH
#define PACI_FUZZ_EXTRA_CATCH
#endif

namespace paci::fuzz {
// Checks the one-line rule of an expected error; aborts (a finding) if it is broken.
void check_message(const char* what);
}  // namespace paci::fuzz

#define PACI_FUZZ(input)                                                                    \
  static void paci_fuzz_body(std::string_view input);                                      \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {                \
    try {                                                                                   \
      paci_fuzz_body(std::string_view(reinterpret_cast<const char*>(data), size));          \
    } catch (const paci::FormatError& e) {                                                  \
      paci::fuzz::check_message(e.what());                                                  \
    } catch (const paci::ScheduleError& e) {                                                \
      paci::fuzz::check_message(e.what());                                                  \
    } catch (const paci::ParamError& e) {                                                   \
      paci::fuzz::check_message(e.what());                                                  \
    } catch (const paci::InputError& e) {                                                   \
      paci::fuzz::check_message(e.what());                                                  \
    } catch (const paci::CostError& e) {                                                    \
      paci::fuzz::check_message(e.what());                                                  \
    } catch (const paci::CalibrationError& e) {                                             \
      paci::fuzz::check_message(e.what());                                                  \
    } catch (const paci::ShardError& e) {                                                   \
      paci::fuzz::check_message(e.what());                                                  \
    } catch (const paci::LlmcError& e) {                                                    \
      paci::fuzz::check_message(e.what());                                                  \
    } catch (const paci::cli::UsageError& e) {                                              \
      paci::fuzz::check_message(e.what());                                                  \
    }                                                                                       \
    PACI_FUZZ_EXTRA_CATCH                                                                   \
    return 0;                                                                               \
  }                                                                                         \
  static void paci_fuzz_body(std::string_view input)
