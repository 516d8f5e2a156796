// Schedule CSV in PyTorch's action-string format (`paci show --file x.csv`): parse, validate,
// and a valid one-step schedule exports to CSV and reads back with the same programs.
#include <cstdlib>

#include "tests/fuzz/fuzz.h"

PACI_FUZZ(input) {
  paci::Schedule s = paci::schedule_from_csv(input, "fuzz.csv");
  paci::validate(s);
  std::string csv;
  try {
    csv = paci::to_csv(s);
  } catch (const paci::FormatError&) {
    return;  // not expressible in PyTorch's CSV (updates inside the schedule)
  }
  paci::CsvHints hints;
  hints.microbatches = s.spec.microbatches;
  paci::Schedule back = paci::schedule_from_csv(csv, "again.csv", hints);
  paci::validate(back);
  if (!(back.spec == s.spec) || back.stage_device != s.stage_device) std::abort();
}
