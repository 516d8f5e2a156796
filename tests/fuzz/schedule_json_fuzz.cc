// Schedule JSON (`paci show --file x.json`): parse, validate, and a valid schedule round-trips.
#include <cstdlib>

#include "tests/fuzz/fuzz.h"

PACI_FUZZ(input) {
  paci::Schedule s = paci::schedule_from_json(input, "fuzz.json");
  paci::validate(s);
  if (!(paci::schedule_from_json(paci::to_json(s), "again.json") == s)) std::abort();
}
