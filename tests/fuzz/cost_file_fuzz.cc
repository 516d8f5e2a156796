// Per-stage cost files (`paci sim --cost-file costs.json`, format paci-cost).
#include "tests/fuzz/fuzz.h"

PACI_FUZZ(input) {
  paci::CostModel c = paci::cost_from_json(input, "fuzz.json");
  c.check(static_cast<int>(c.stages.size()));
  paci::cost_from_json(paci::cost_to_json(c), "again.json").check(static_cast<int>(c.stages.size()));
}
