// `paci schedules` and `paci show`.
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "cli/common.h"
#include "cli/model_flags.h"
#include "schedules/source.h"
#include "sim/builders.h"
#include "schedules/files.h"
#include "schedules/formats.h"
#include "schedules/registry.h"
#include "schedules/render.h"
#include "schedules/validate.h"

namespace paci::cli {

void add_schedules_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("schedules", "List the schedules paci can generate");
  cmd->callback([] {
    for (const auto& info : schedule_catalog())
      std::cout << fmt::format("{:<17} {}\n", info.name, info.summary);
  });
}

namespace {

struct ShowOptions {
  ScheduleFlags sched;
  std::string export_path;
  int width = 160;
};

}  // namespace

void add_show_command(CLI::App& app) {
  auto opt = std::make_shared<ShowOptions>();
  auto* cmd = app.add_subcommand(
      "show", "Print a schedule's unit-time timeline and its per-stage facts (in-flight "
              "micro-batches, weight copies, drift, delay); export it as JSON or CSV");
  opt->sched.schedule = "";
  opt->sched.stages = opt->sched.microbatches = 0;  // required with --schedule
  opt->sched.steps = 1;
  opt->sched.add_to(cmd, "Schedule name (see `paci schedules`; zb-1p/zb-2p from the uniform costs f=1, b=2)");
  cmd->add_option("--export", opt->export_path, "Write the schedule to FILE.json or FILE.csv");
  cmd->add_option("--width", opt->width, "Time units of the timeline to draw")->capture_default_str();
  cmd->callback([opt] {
    const ScheduleFlags& f = opt->sched;
    if (f.file.empty() == f.schedule.empty()) throw UsageError("give exactly one of --schedule NAME or --file FILE");
    if (opt->width < 1 || opt->width > 100000)
      throw UsageError(fmt::format("--width must be in 1..100000 (got {})", opt->width));
    if (!opt->export_path.empty()) check_output_writable(user_path(opt->export_path), "--export");
    if (f.file.empty() && f.stages == 0 && f.microbatches == 0)
      throw UsageError("--stages and --microbatches are required with --schedule");
    // zb-1p / zb-2p need durations: here the uniform f=1, b=2 (i = w = 1) of the timeline.
    const Schedule s =
        get_schedule(f.request(), simulator_builders([](int) { return parse_uniform_cost("f=1,b=2"); }));
    Analysis a = validate(s);
    // A schedule PyTorch's CSV cannot hold is refused before anything is printed or written.
    const std::string& ex = opt->export_path;
    if (ex.size() >= 4 && (ex.compare(ex.size() - 4, 4, ".csv") == 0 || ex.compare(ex.size() - 4, 4, ".CSV") == 0))
      (void)to_csv(s);
    std::cout << fmt::format("{}: {} devices x {} virtual = {} stages, {} micro-batches x {} "
                             "steps, accumulation {}, weight policy {}, {} actions\n\n",
                             s.name, s.spec.devices, s.spec.virtual_stages, s.stages(),
                             s.spec.microbatches, s.spec.steps, s.accum, policy_name(s.policy),
                             s.num_actions());
    std::cout << render_unit_timeline(s, opt->width) << "\n" << render_stage_table(s, a);
    if (!opt->export_path.empty()) {
      save_schedule(s, user_path(opt->export_path));
      std::cout << "\nwrote " << opt->export_path << "\n";
    }
  });
}

}  // namespace paci::cli
