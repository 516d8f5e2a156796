// Calibration files (`paci sim --cost-file cal.json`, `paci compare --calibration`): parse, then
// the cost model of balanced partitions into 1..8 stages, as `paci sim` builds it.
#include "tests/fuzz/fuzz.h"

PACI_FUZZ(input) {
  if (!paci::is_calibration(input)) return;
  paci::Calibration c = paci::calibration_from_json(input, "fuzz.json");
  for (int stages = 1; stages <= 8; ++stages) {
    try {
      paci::cost_for_partition(c, paci::balanced_compositions(c, stages)).check(stages);
    } catch (const paci::CalibrationError& e) {
      paci::fuzz::check_message(e.what());
    }
  }
}
