// `paci schedules` and `paci show`.
#include <iostream>
#include <optional>

#include <fmt/format.h>

#include "cli/common.h"
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
  std::string schedule, file, export_path, policy;
  ScheduleParams params;
  std::optional<int> virtual_stages, accum;
  int width = 160;
};

}  // namespace

void add_show_command(CLI::App& app) {
  auto opt = std::make_shared<ShowOptions>();
  auto* cmd = app.add_subcommand(
      "show", "Print a schedule's unit-time timeline and its per-stage facts (in-flight "
              "micro-batches, weight copies, drift, delay); export it as JSON or CSV");
  cmd->add_option("--schedule", opt->schedule, "Schedule name (see `paci schedules`)");
  cmd->add_option("--file", opt->file, "Load a schedule from .json or .csv (PyTorch action strings)");
  cmd->add_option("--stages,-P", opt->params.stages, "Pipeline stages = devices P (>= 1)");
  cmd->add_option("--microbatches,-M", opt->params.microbatches, "Micro-batches per step M (>= 1)");
  cmd->add_option("--steps,-N", opt->params.steps, "Optimizer steps N (>= 1)")->capture_default_str();
  cmd->add_option("--virtual,-v", opt->virtual_stages,
                  "Virtual stages per device (interleaved-1f1b; default 2)");
  cmd->add_option("--accum,-a", opt->accum,
                  "paci: micro-batches per optimizer step of a stage (default M)");
  cmd->add_option("--policy", opt->policy,
                  "Weight policy of a CSV file: current, stash or double-buffer (default current)");
  cmd->add_option("--export", opt->export_path, "Write the schedule to FILE.json or FILE.csv");
  cmd->add_option("--width", opt->width, "Time units of the timeline to draw")->capture_default_str();
  cmd->callback([opt] {
    Schedule s;
    if (!opt->file.empty() == !opt->schedule.empty())
      throw UsageError("give exactly one of --schedule NAME or --file FILE");
    if (opt->width < 1 || opt->width > 100000)
      throw UsageError(fmt::format("--width must be in 1..100000 (got {})", opt->width));
    if (!opt->export_path.empty()) check_output_writable(user_path(opt->export_path), "--export");
    if (!opt->file.empty()) {
      CsvHints hints;
      if (!opt->policy.empty()) {
        hints.policy = parse_policy(opt->policy);
        if (!hints.policy)
          throw UsageError(fmt::format("--policy: unknown weight policy '{}' (allowed: current, "
                                       "stash, double-buffer)", opt->policy));
      }
      if (opt->params.microbatches > 0) hints.microbatches = opt->params.microbatches;
      s = load_schedule(user_path(opt->file), hints);
    } else {
      if (opt->params.stages == 0 && opt->params.microbatches == 0)
        throw UsageError("--stages and --microbatches are required with --schedule");
      opt->params.virtual_stages = opt->virtual_stages;
      opt->params.accum = opt->accum;
      // zb-1p / zb-2p need durations: here the uniform f=1, b=2 (i = w = 1) of the timeline.
      ScheduleRequest req;
      req.name = opt->schedule;
      req.params = opt->params;
      s = get_schedule(req, simulator_builders([](int) { return parse_uniform_cost("f=1,b=2"); }));
    }
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
