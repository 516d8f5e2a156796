// The --cost "f=1,b=2,..." string of `paci sim`.
#include "tests/fuzz/fuzz.h"

PACI_FUZZ(input) { paci::parse_uniform_cost(input).check(1); }
