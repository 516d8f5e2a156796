// The flags that take lists: the first byte picks --compare, --sweep, --straggler or
// --partition (a stage layout such as E+3,3.5,3.5,3+H for a 12-block model, as
// `paci train --partition` reads it); the rest is the flag's value.
#include <algorithm>
#include <stdexcept>

#include "cli/list_flags.h"
#include "cli/model_flags.h"
#include "exec/model/config.h"
#include "exec/model/partition.h"
#include "tests/fuzz/fuzz.h"

PACI_FUZZ(input) {
  if (input.empty()) return;
  const std::string value(input.substr(1));
  switch (static_cast<unsigned char>(input[0]) % 4) {
    case 0: paci::cli::parse_compare_list(value); break;
    case 1: paci::cli::parse_sweep(value); break;
    case 2: paci::cli::parse_straggler(value); break;
    default: {
      // As `paci train --partition VALUE` reads it (ModelFlags -> parse_layout), for as many
      // stages as the value has entries.
      static const paci::GptConfig cfg = paci::preset("gpt2-124m");
      paci::cli::ModelFlags flags;
      flags.partition = value;
      const long entries = 1 + std::count(value.begin(), value.end(), ',');
      if (entries > 4096) return;
      flags.stage_partition(cfg, static_cast<int>(entries));
    }
  }
}
