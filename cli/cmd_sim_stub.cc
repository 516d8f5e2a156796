// Placeholder until the simulator lands: `paci sim` explains it is not built yet.
#include "cli/common.h"

namespace paci::cli {

void add_sim_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("sim", "Simulate a schedule with a cost model (not built yet)");
  cmd->callback([] { throw RunError("paci sim is not available in this build"); });
}

}  // namespace paci::cli
