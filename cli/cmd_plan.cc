// paci plan: search schedules x P x micro-batch size x v x backward semantics for a model on a
// device under a memory limit, simulate each (sim/plan.h), print the Pareto front of step time
// against peak memory and a recommendation; --csv / --json hold every candidate.
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/list_flags.h"
#include "cli/model_flags.h"
#include "schedules/files.h"
#include "sim/calibrate/calibration.h"
#include "sim/gpt_cost.h"
#include "sim/plan.h"

namespace paci::cli {
namespace {

struct PlanFlags {
  std::string model = "gpt2-350m", device = "h100", precision = "bf16", calibration;
  std::string stages = "8", mb_sizes, schedules, virtual_stages = "2,4", backward = "current,forward,recompute";
  int global_batch = 128;
  double memory_limit = -1;  // GiB; -1: the device's memory
  int max_drift = 1;
  bool no_prune = false, all = false;
  std::string csv, json;
};

std::vector<int> int_list(const std::string& flag, const std::string& text) {
  if (!text.empty() && text.size() <= 7 && text.find_first_not_of("0123456789") == std::string::npos) {
    const int n = std::stoi(text);
    if (n >= 1) return {n};
  }
  try {
    return parse_sweep("stages=" + text).values;
  } catch (const UsageError&) {
    throw UsageError(fmt::format("{} {}: give N, A,B,C, A:B (doubling) or A:B:STEP: integers >= 1, at most 1000 values", flag, text));
  }
}

std::string gib(double bytes) { return fmt::format("{:.2f} GiB", bytes / (1ull << 30)); }

std::string seconds(double s) {
  if (s >= 1) return fmt::format("{:.3g} s", s);
  if (s >= 1e-3) return fmt::format("{:.4g} ms", s * 1e3);
  return fmt::format("{:.4g} us", s * 1e6);
}

std::string csv_of(const PlanResult& r) {
  std::string out =
      "schedule,P,v,micro_batch,microbatches,backward,layout,status,step_time_s,samples_per_s,tokens_per_s,"
      "peak_memory_bytes,bubble,steady_bubble,max_drift,step_bound_s,note\n";
  for (const PlanCandidate& c : r.candidates) {
    std::string note = c.note;
    for (char& ch : note)
      if (ch == '"' || ch == '\n') ch = '\'';
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\"\n", c.schedule, c.P, c.v, c.micro_batch,
                       c.microbatches, policy_name(c.backward), c.layout, plan_status_name(c.status), c.step_time,
                       c.samples_per_second, c.tokens_per_second, c.memory, c.bubble, c.steady_bubble, c.max_drift,
                       c.step_bound, note);
  }
  return out;
}

nlohmann::json json_of(const PlanResult& r, const std::string& what, double memory_limit) {
  nlohmann::json j;
  j["format"] = "paci-plan";
  j["version"] = 1;
  j["space"] = what;
  j["memory_limit"] = memory_limit;  // bytes per device, 0: none
  j["recommended"] = r.recommended;
  j["reason"] = r.reason;
  j["front"] = r.front;
  j["counts"] = {{"candidates", r.candidates.size()}, {"simulated", r.simulated}, {"over_memory", r.over_memory},
                 {"dominated", r.dominated}, {"invalid", r.invalid}};
  j["seconds"] = r.seconds;
  nlohmann::json all = nlohmann::json::array();
  for (const PlanCandidate& c : r.candidates)
    all.push_back({{"schedule", c.schedule}, {"P", c.P}, {"v", c.v}, {"micro_batch", c.micro_batch},
                   {"microbatches", c.microbatches}, {"backward", std::string(policy_name(c.backward))},
                   {"layout", c.layout}, {"status", plan_status_name(c.status)}, {"step_time", c.step_time},
                   {"samples_per_second", c.samples_per_second}, {"tokens_per_second", c.tokens_per_second},
                   {"peak_memory", c.memory}, {"bubble", c.bubble}, {"steady_bubble", c.steady_bubble},
                   {"max_drift", c.max_drift}, {"step_bound", c.step_bound}, {"note", c.note}});
  j["candidates"] = all;
  return j;
}

void print_row(const PlanCandidate& c, bool mark) {
  std::cout << fmt::format("{}{:<42} {:>10} {:>11} {:>11} {:>7.2f}% {:>7.2f}% {:>5}  {}\n", mark ? "* " : "  ",
                           c.label(), seconds(c.step_time),
                           c.tokens_per_second > 0 ? fmt::format("{:.4g}", c.tokens_per_second)
                                                   : fmt::format("{:.4g}", c.samples_per_second),
                           gib(c.memory), 100 * c.bubble, 100 * c.steady_bubble, c.max_drift, c.layout);
}

void run_plan_command(const PlanFlags& f) {
  PlanSpace sp;
  sp.stages = int_list("--stages", f.stages);
  for (int P : sp.stages)
    if (P > 4096) throw UsageError(fmt::format("--stages {}: must be in 1..4096", P));
  if (f.global_batch < 1 || f.global_batch > (1 << 20))
    throw UsageError(fmt::format("--global-batch must be in 1..{} sequences (got {})", 1 << 20, f.global_batch));
  sp.global_batch = f.global_batch;
  if (!f.mb_sizes.empty()) sp.micro_batch_sizes = int_list("--mb-sizes", f.mb_sizes);
  sp.virtual_stages = int_list("--virtual", f.virtual_stages);
  for (int v : sp.virtual_stages)
    if (v < 2 || v > 64) throw UsageError(fmt::format("--virtual {}: must be in 2..64 chunks per device", v));
  if (!f.schedules.empty()) sp.schedules = split_list(f.schedules, ',');
  for (const std::string& s : sp.schedules)
    if (!find_schedule(s) || s == "pipedream") {
      std::string all;
      for (const std::string& n : default_plan_schedules()) all += n + ", ";
      throw UsageError(fmt::format("--schedules: '{}' is not one of {}pipedream-2bw (pipedream updates per "
                                   "micro-batch: no global batch)", excerpt(s), all));
    }
  sp.backward.clear();
  for (const std::string& b : split_list(f.backward, ',')) {
    auto p = parse_policy(b);
    if (!p || (*p != WeightPolicy::kCurrent && *p != WeightPolicy::kForward && *p != WeightPolicy::kRecompute))
      throw UsageError(fmt::format("--backward: '{}' is not one of current, forward, recompute", excerpt(b)));
    sp.backward.push_back(*p);
  }
  if (sp.backward.empty()) throw UsageError("--backward: give at least one of current, forward, recompute");
  if (f.max_drift < -1) throw UsageError(fmt::format("--max-drift must be >= 0, or -1 for any (got {})", f.max_drift));
  sp.max_drift = f.max_drift;
  sp.prune = !f.no_prune;
  if (!(f.memory_limit == -1 || (f.memory_limit >= 0 && f.memory_limit <= 1e6)))
    throw UsageError(fmt::format("--memory-limit must be in 0..1000000 GiB (0: none; got {})", f.memory_limit));
  for (const auto& [flag, path] : {std::pair<const char*, std::string>{"--csv", f.csv}, {"--json", f.json}})
    if (!path.empty()) check_output_writable(user_path(path), flag);

  PlanCostFn cost;
  std::string what;
  if (!f.calibration.empty()) {
    auto cal = std::make_shared<Calibration>(load_calibration(user_path(f.calibration)));
    if (!f.mb_sizes.empty() && (sp.micro_batch_sizes.size() != 1 || sp.micro_batch_sizes[0] != cal->micro_batch))
      throw UsageError(fmt::format("--mb-sizes: a calibration was measured at micro-batches of {} sequences; "
                                   "leave --mb-sizes out", cal->micro_batch));
    sp.micro_batch_sizes = {cal->micro_batch};
    if (f.global_batch % cal->micro_batch != 0)
      throw UsageError(fmt::format("--global-batch {} must be a multiple of the calibration's micro-batch of {} "
                                   "sequences", f.global_batch, cal->micro_batch));
    sp.memory_limit = f.memory_limit > 0 ? f.memory_limit * (1ull << 30) : 0;
    cost = [cal](int stages, int, const PartitionLimits&) {
      return PlanCost{cost_for_partition(*cal, balanced_compositions(*cal, stages)), "calibrated"};
    };
    what = fmt::format("calibration {}", f.calibration);
  } else {
    GptCostOptions base;
    try {
      base.model = parse_gpt_model(f.model);
      base.device = parse_device(f.device);
    } catch (const CostError& e) {
      throw UsageError(e.what());
    }
    if (f.precision != "bf16" && f.precision != "autocast" && f.precision != "fp32")
      throw UsageError(fmt::format("--precision {}: must be bf16, autocast or fp32", excerpt(f.precision)));
    base.precision = f.precision;
    sp.memory_limit = f.memory_limit >= 0 ? f.memory_limit * (1ull << 30) : base.device.memory;
    cost = [base](int stages, int micro_batch, const PartitionLimits& limits) {
      GptCostOptions o = base;
      o.stages = stages;
      o.micro_batch = micro_batch;
      o.limits = limits;
      GptCost g = gpt_cost_model(o);
      return PlanCost{g.cost, g.layout};
    };
    what = fmt::format("{} on {} ({}), sequence {}", f.model, f.device, f.precision, base.model.seq_len);
  }

  PlanResult r;
  try {
    r = run_plan(sp, cost);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  std::cout << fmt::format("plan: {}; global batch {} sequences; {}; P {}\n", what, f.global_batch,
                           sp.memory_limit > 0 ? "memory limit " + gib(sp.memory_limit) + " per device"
                                               : std::string("no memory limit"),
                           f.stages);
  std::cout << fmt::format("{} configurations: {} simulated, {} over the memory limit (exact peak from program "
                           "order, not simulated), {} dominated by a simulated one on bounds (not simulated), {} "
                           "not buildable; {:.2f} s\n\n",
                           r.candidates.size(), r.simulated, r.over_memory, r.dominated, r.invalid, r.seconds);
  bool tokens = false;
  for (const PlanCandidate& c : r.candidates) tokens = tokens || c.tokens_per_second > 0;
  std::cout << fmt::format("  {:<42} {:>10} {:>11} {:>11} {:>8} {:>8} {:>5}  {}\n", "Pareto front", "step time",
                           tokens ? "tokens/s" : "samples/s", "peak mem", "bubble", "steady", "drift", "partition");
  for (int i : r.front) print_row(r.candidates[i], i == r.recommended);
  if (r.recommended >= 0 && r.candidates[r.recommended].status != PlanStatus::kFront) {
    std::cout << "  (off the front: the fastest within --max-drift)\n";
    print_row(r.candidates[r.recommended], true);
  }
  if (f.all) {
    std::cout << "\n  every other simulated configuration:\n";
    for (const PlanCandidate& c : r.candidates)
      if (c.status == PlanStatus::kSimulated) print_row(c, false);
  }
  std::cout << "\n";
  if (r.recommended >= 0)
    std::cout << fmt::format("recommended: {} (partition {}): {}\n", r.candidates[r.recommended].label(),
                             r.candidates[r.recommended].layout, r.reason);
  else
    std::cout << "recommended: none: " << r.reason << "\n";
  if (r.invalid > 0) {
    for (const PlanCandidate& c : r.candidates)
      if (c.status == PlanStatus::kInvalid) {
        std::cout << fmt::format("(not buildable, e.g. {}: {})\n", c.label(), c.note);
        break;
      }
  }
  try {
    if (!f.csv.empty()) {
      write_file_atomic(user_path(f.csv), csv_of(r));
      std::cout << "wrote " << f.csv << "\n";
    }
    if (!f.json.empty()) {
      write_file_atomic(user_path(f.json), json_of(r, what, sp.memory_limit).dump(1) + "\n");
      std::cout << "wrote " << f.json << "\n";
    }
  } catch (const std::runtime_error& e) {
    throw RunError(e.what());
  }
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto f = std::make_shared<PlanFlags>();
  auto* cmd = app.add_subcommand(
      "plan", "Search schedules x P x micro-batch size x v x backward semantics for a model, device and memory "
              "limit; simulate each and print the Pareto front of step time against peak memory, with a "
              "recommendation");
  cmd->add_option("--model", f->model, "GPT model: tiny, gpt2-124m, gpt2-350m, gpt2-774m, gpt2-1558m or "
                                       "custom:layers=..,d=..,heads=..,seq=..,vocab=..")->capture_default_str();
  cmd->add_option("--device", f->device, "h100, h200 or custom:flops=..,membw=..,linkbw=..,mem=..")
      ->capture_default_str();
  cmd->add_option("--precision", f->precision, "bf16 (a bf16 copy + fp32 master), autocast (fp32 master; bf16 casts per micro-batch) or fp32")->capture_default_str();
  cmd->add_option("--calibration", f->calibration,
                  "Cost pieces from `paci calibrate` instead of --model/--device (micro-batch size fixed by it)");
  cmd->add_option("-P,--stages", f->stages, "Pipeline depths: N, A,B,C, A:B (doubling) or A:B:STEP")
      ->capture_default_str();
  cmd->add_option("--global-batch", f->global_batch, "Sequences per optimizer step")->capture_default_str();
  cmd->add_option("--mb-sizes", f->mb_sizes,
                  "Micro-batch sizes in sequences (a list as for -P; default: every divisor of --global-batch); "
                  "M = a = global batch / micro-batch size");
  cmd->add_option("--schedules", f->schedules,
                  "Schedules to search (default: every schedule of `paci schedules` but pipedream and "
                  "pipedream-2bw; pipedream-2bw may be named)");
  cmd->add_option("--virtual", f->virtual_stages, "Chunks per device tried for the schedules that take them (interleaved-1f1b, interleaved-zb, looped-bfs)")->capture_default_str();
  cmd->add_option("--backward", f->backward,
                  "Backward semantics tried: current, forward (asynchronous schedules only), recompute (whole-B "
                  "schedules)")->capture_default_str();
  cmd->add_option("--memory-limit", f->memory_limit,
                  "GiB per device (default: the device's memory; 0: none)");
  cmd->add_option("--max-drift", f->max_drift,
                  "Largest weight-version drift the recommendation accepts (-1: any; default 1: PACI's bound "
                  "for a >= P-1, under which its training matched 1F1B's)")->capture_default_str();
  cmd->add_flag("--no-prune", f->no_prune, "Simulate every candidate (the exhaustive search the pruning must match)");
  cmd->add_flag("--all", f->all, "Also print the simulated candidates off the front");
  cmd->add_option("--csv", f->csv, "Write every candidate (status, bounds, metrics) as CSV");
  cmd->add_option("--json", f->json, "Write the search (candidates, front, recommendation) as JSON (format paci-plan)");
  cmd->callback([f] { run_plan_command(*f); });
}

}  // namespace paci::cli
