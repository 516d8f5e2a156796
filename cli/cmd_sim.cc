// `paci sim`: simulate one schedule (or compare several, or sweep a parameter) with a cost
// model and print what a user needs to choose one: step time, throughput, bubbles, memory per
// device and weight-version drift. Writes JSON summaries, Chrome/Perfetto traces and SVG
// timelines on request.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/list_flags.h"
#include "cli/model_flags.h"
#include "schedules/analysis.h"
#include "schedules/formats.h"
#include "schedules/huge_pages.h"
#include "schedules/registry.h"
#include "schedules/files.h"
#include "schedules/trace/chrome.h"
#include "schedules/trace/metrics.h"
#include "schedules/validate.h"
#include "sim/cost.h"
#include "sim/gpt_cost.h"
#include "sim/calibrate/calibration.h"
#include "sim/simulator.h"
#include "sim/svg.h"
#include "sim/builders.h"
#include "sim/zero_bubble.h"

namespace paci::cli {
namespace {

using nlohmann::json;

struct SimFlags {
  ScheduleFlags sched;  // --schedule/--file, -P, -M, -N, -v, -a (cli/model_flags.h)
  std::string compare;
  std::string cost, cost_file, model, device = "h100", precision = "bf16", partition;
  int mb_size = 8;
  std::optional<double> link_bw, link_latency, efficiency;
  double memory_limit = 0;
  bool dynamic = false;
  double jitter = 0;
  uint64_t seed = 1;
  std::vector<std::string> stragglers;
  std::string sweep, csv, json_path, trace_path, svg_path, export_path, memory_path;
};

// One simulated schedule with everything the reports need.
struct Outcome {
  Schedule schedule;      // as run (the realised order for --dynamic)
  CostModel cost;
  SimResult sim;
  TraceMetrics metrics;
  double seconds = 0;     // wall time of the simulation
};

std::string fmt_time(double s) {
  double a = std::fabs(s);
  if (a == 0) return "0";
  if (a >= 1000) return fmt::format("{:.0f} s", s);
  if (a >= 1) return fmt::format("{:.4g} s", s);
  if (a >= 1e-3) return fmt::format("{:.4g} ms", s * 1e3);
  return fmt::format("{:.4g} us", s * 1e6);
}

std::string fmt_mem(double bytes, const std::string& unit) {
  if (unit != "B") return fmt::format("{:.4g}", bytes);
  return fmt::format("{:.2f} GiB", bytes / (1ull << 30));
}

std::string fmt_rate(double x) {
  if (x >= 1e6) return fmt::format("{:.3f}M", x / 1e6);
  if (x >= 1e3) return fmt::format("{:.2f}k", x / 1e3);
  return fmt::format("{:.4g}", x);
}

// The cost model for a schedule with `stages` stages.
CostModel make_cost(const SimFlags& f, int stages) {
  int given = !f.cost.empty() + !f.cost_file.empty() + !f.model.empty();
  if (given > 1) throw UsageError("give at most one of --cost, --cost-file and --model");
  if (!f.cost_file.empty()) {
    const std::string path = user_path(f.cost_file);
    std::string text;
    try {
      text = read_input_file(path, "--cost-file");
    } catch (const InputError& e) {
      throw UsageError(e.what());
    }
    if (!is_calibration(text)) return cost_from_json(text, path);
    try {
      Calibration c = calibration_from_json(text, path);
      if (f.partition.empty()) return cost_for_partition(c, balanced_compositions(c, stages));
      // An explicit layout over the calibrated model's blocks (a half costs half a layer).
      GptConfig shape;
      shape.layers = c.layers;
      std::vector<StageComposition> comps;
      for (const StagePartition& sp : partition_flag(shape, f.partition, stages)) comps.push_back(composition_of(sp));
      return cost_for_partition(c, comps);
    } catch (const CalibrationError& e) {
      throw UsageError(e.what());
    }
  }
  if (!f.model.empty()) {
    GptCostOptions o;
    o.model = parse_gpt_model(f.model);
    o.device = parse_device(f.device);
    if (f.link_bw) o.device.link_bandwidth = *f.link_bw * 1e9;
    if (f.link_latency) o.device.link_latency = *f.link_latency * 1e-6;
    if (f.efficiency) o.device.efficiency = *f.efficiency;
    o.micro_batch = f.mb_size;
    o.precision = f.precision;
    o.stages = stages;
    if (!f.partition.empty()) o.partition = partition_flag(o.model, f.partition, stages);
    return gpt_cost_model(o).cost;
  }
  return parse_uniform_cost(f.cost.empty() ? "f=1,b=2" : f.cost);
}

// Log-normal noise of --jitter: sigma <= 2 (sigma = 2 already spreads durations over a factor
// of e^4 = 55 either way). --straggler's factor: cli/list_flags.h.
constexpr double kMaxJitter = 2;

std::vector<Straggler> parse_stragglers(const SimFlags& f) {
  std::vector<Straggler> out;
  for (const auto& s : f.stragglers) {
    auto [stage, factor] = parse_straggler(s);
    Straggler g;
    g.stage = stage;
    g.factor = factor;
    out.push_back(g);
  }
  return out;
}

Outcome run_one(const std::string& name_in, const SimFlags& flags, bool quiet) {
  // "paci-dynamic" in a list is paci under the runtime policy, so the two compare side by side.
  SimFlags f = flags;
  std::string name = name_in;
  if (name == "paci-dynamic") name = "paci", f.dynamic = true;
  Outcome out;
  SimOptions so;
  so.jitter = f.jitter;
  so.seed = f.seed;
  so.stragglers = parse_stragglers(f);
  // The summary needs the metrics and the critical path only; the whole trace (some 120
  // bytes an action) only the outputs drawn from it.
  so.keep_trace = !f.trace_path.empty() || !f.svg_path.empty() || !f.memory_path.empty();
  // The schedule from its source (schedules/source.h); zb-1p / zb-2p are built from this
  // command's cost model.
  // In a --compare list each generator gets only the parameters it uses.
  const ScheduleRequest req = f.compare.empty() ? f.sched.request() : f.sched.request_for(name);
  const ScheduleBuilders builders = simulator_builders([&f](int stages) { return make_cost(f, stages); },
                                                       f.memory_limit * (1ull << 30), so);
  Schedule s;
  try {
    s = get_schedule(req, builders);
  } catch (const CostError& e) {
    throw UsageError(e.what());
  }
  out.cost = is_zero_bubble_auto(s.name) ? make_cost(f, s.stages())
                                         : per_chunk(make_cost(f, s.stages()), s.spec.virtual_stages);
  for (const Straggler& g : so.stragglers)
    if (g.stage >= s.stages())
      throw UsageError(fmt::format("--straggler {}={}: the stage must be in 0..{}", g.stage, g.factor,
                                   s.stages() - 1));
  if (f.dynamic && s.name != "paci")
    throw UsageError(fmt::format("--dynamic runs the PACI runtime policy: it applies to --schedule paci "
                                 "(got {}; in --compare list paci-dynamic instead)", s.name));
  const size_t n = s.num_actions();
  const bool loud = !quiet && n > 200000;
  if (loud) std::cerr << fmt::format("simulating {} ({} actions)...", s.name, n) << std::flush;
  auto t0 = std::chrono::steady_clock::now();
  if (f.dynamic) {
    out.sim = simulate_paci_policy(s.spec.devices, s.spec.microbatches, s.spec.steps, s.accum, out.cost, so);
    out.schedule = out.sim.realised;
  } else {
    out.schedule = std::move(s);  // a million actions are 20 MB: no copy
  }
  if (f.dynamic) {
    validate(out.schedule);
  } else {
    // The simulator runs the programs in order itself, so validation skips its own in-order
    // run; if either fails, validate() runs whole and its error comes first, as before.
    try {
      const ActionIndex index(out.schedule);  // the structure check, and the simulator's index
      validate_except_order(out.schedule, index);
      out.sim = simulate(out.schedule, index, out.cost, so);
    } catch (const std::exception&) {
      validate(out.schedule);
      throw;
    }
  }
  out.metrics = out.sim.metrics;  // = compute_metrics(out.sim.trace), computed as it ran
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (loud) std::cerr << fmt::format(" {:.2f} s\n", out.seconds);
  return out;
}

std::string critical_path_summary(const Outcome& o) {
  int count[6] = {0, 0, 0, 0, 0, 0};  // by kind: F, B, I, W, OPT listed, FB (last) not
  double compute = 0;
  std::vector<char> on_dev(o.schedule.devices(), 0);
  for (const PathAction& a : o.sim.critical_actions) {
    ++count[static_cast<int>(a.action.kind)];
    compute += a.end - a.start;
    on_dev[a.device] = 1;
  }
  int devs = 0;
  for (char c : on_dev) devs += c;
  return fmt::format("{} actions (F {}, B {}, I {}, W {}, OPT {}) on {} devices, {} of compute, {} waiting "
                     "on transfers",
                     o.sim.critical_path.size(), count[0], count[1], count[2], count[3], count[4], devs,
                     fmt_time(compute), fmt_time(o.metrics.makespan - compute));
}

void print_one(const Outcome& o) {
  const Schedule& s = o.schedule;
  const TraceMetrics& m = o.metrics;
  const std::string& unit = o.cost.memory_unit;
  std::cout << fmt::format("{}: {} devices x {} virtual = {} stages, {} micro-batches x {} steps, "
                           "accumulation {}, weight policy {}, {} actions\n",
                           s.name, s.spec.devices, s.spec.virtual_stages, s.stages(), s.spec.microbatches,
                           s.spec.steps, s.accum, policy_name(s.policy), s.num_actions());
  std::cout << "cost: " << o.cost.description << "\n\n";
  std::cout << fmt::format("makespan     {}\n", fmt_time(m.makespan));
  std::cout << fmt::format("step time    {} {}\n", fmt_time(m.step_time),
                           m.steady ? "(steady state)" : "(makespan / steps: too few steps for a steady state)");
  std::cout << fmt::format("throughput   {} samples/s", fmt_rate(m.samples_per_second));
  if (m.tokens_per_second > 0) std::cout << fmt::format(", {} tokens/s", fmt_rate(m.tokens_per_second));
  std::cout << "\n";
  std::cout << fmt::format("bubble       {:.2f}% overall, {:.2f}% steady state\n", 100 * m.bubble,
                           100 * m.steady_bubble);
  std::cout << fmt::format("peak memory  {} on device {}{}\n", fmt_mem(m.peak_memory, unit), m.peak_device,
                           unit == "B" ? "" : " (" + unit + ")");
  std::cout << "critical path " << critical_path_summary(o) << "\n\n";
  std::cout << fmt::format("{:>6} {:>10} {:>8} {:>8} {:>11} {:>10} {:>10} {:>10} {:>10} {:>11}\n", "device",
                           "busy", "bubble", "steady", "peak mem", "weights", "grads", "optimizer",
                           "stashed", "activations");
  for (int d = 0; d < s.devices(); ++d) {
    const DeviceMetrics& x = m.devices[d];
    std::string oom = o.cost.device_memory > 0 && x.peak_memory > o.cost.device_memory ? "  OUT OF MEMORY" : "";
    std::cout << fmt::format("{:>6} {:>10} {:>7.2f}% {:>7.2f}% {:>11} {:>10} {:>10} {:>10} {:>10} {:>11}{}\n", d,
                             fmt_time(x.busy), 100 * x.bubble, 100 * x.steady_bubble,
                             fmt_mem(x.peak_memory, unit), fmt_mem(x.static_memory.weights, unit),
                             fmt_mem(x.static_memory.grads, unit), fmt_mem(x.static_memory.optimizer, unit),
                             fmt_mem(x.static_memory.stashed, unit), fmt_mem(x.peak_dynamic, unit), oom);
  }
  std::cout << fmt::format("\n{:>5} {:>7} {:>9} {:>10} {:>9} {:>10}   (simulated versions; equal to the static "
                           "analysis)\n",
                           "stage", "updates", "max drift", "mean drift", "max delay", "mean delay");
  for (int st = 0; st < s.stages(); ++st) {
    const StageDriftStats& x = m.stages[st];
    std::cout << fmt::format("{:>5} {:>7} {:>9} {:>10.3f} {:>9} {:>10.3f}\n", st, x.updates, x.max_drift,
                             x.mean_drift, x.max_delay, x.mean_delay);
  }
}

double peak_activations(const TraceMetrics& m) {
  double x = 0;
  for (const auto& d : m.devices) x = std::max(x, d.peak_dynamic);
  return x;
}

int max_drift(const TraceMetrics& m) {
  int x = 0;
  for (const auto& s : m.stages) x = std::max(x, s.max_drift);
  return x;
}

void print_compare(const std::vector<Outcome>& all) {
  const std::string& unit = all.front().cost.memory_unit;
  std::cout << fmt::format("{} devices, {} micro-batches x {} steps; cost: {}\n\n", all.front().schedule.devices(),
                           all.front().schedule.spec.microbatches, all.front().schedule.spec.steps,
                           all.front().cost.description);
  bool tokens = all.front().metrics.tokens_per_second > 0;
  std::cout << fmt::format("{:<17} {:>10} {:>10} {:>10} {:>10} {:>7} {:>8} {:>8} {:>11} {:>11} {:>6}\n", "schedule",
                           "makespan", "step time", "samples/s", tokens ? "tokens/s" : "", "rel.", "bubble", "steady",
                           "peak mem", "peak act", "drift");
  const double base = all.front().metrics.samples_per_second;
  for (const auto& o : all) {
    const TraceMetrics& m = o.metrics;
    std::cout << fmt::format("{:<17} {:>10} {:>10} {:>10} {:>10} {:>6.2f}x {:>7.2f}% {:>7.2f}% {:>11} {:>11} {:>6}\n",
                             o.schedule.name, fmt_time(m.makespan), fmt_time(m.step_time),
                             fmt_rate(m.samples_per_second), tokens ? fmt_rate(m.tokens_per_second) : "",
                             base > 0 ? m.samples_per_second / base : 0, 100 * m.bubble, 100 * m.steady_bubble,
                             fmt_mem(m.peak_memory, unit), fmt_mem(peak_activations(m), unit), max_drift(m));
  }
  std::cout << fmt::format("\nrel. = throughput relative to {}; step time and steady bubble over the steady "
                           "state where the run has one; drift = max weight-version drift\n",
                           all.front().schedule.name);
}

json summary_json(const Outcome& o) {
  const TraceMetrics& m = o.metrics;
  const Schedule& s = o.schedule;
  json devices = json::array(), stages = json::array(), path = json::array();
  for (const auto& d : m.devices)
    devices.push_back({{"busy", d.busy}, {"bubble", d.bubble}, {"steady", d.steady},
                       {"steady_bubble", d.steady_bubble}, {"peak_memory", d.peak_memory},
                       {"peak_time", d.peak_time}, {"weights", d.static_memory.weights},
                       {"grads", d.static_memory.grads}, {"optimizer", d.static_memory.optimizer},
                       {"stashed", d.static_memory.stashed}, {"workspace", d.static_memory.workspace},
                       {"activations", d.peak_dynamic}});
  for (const auto& x : m.stages)
    stages.push_back({{"updates", x.updates}, {"max_drift", x.max_drift}, {"mean_drift", x.mean_drift},
                      {"max_delay", x.max_delay}, {"mean_delay", x.mean_delay}});
  for (const PathAction& a : o.sim.critical_actions) path.push_back(to_string(a.action));
  return {{"schedule", s.name},
          {"devices", s.spec.devices},
          {"virtual_stages", s.spec.virtual_stages},
          {"microbatches", s.spec.microbatches},
          {"steps", s.spec.steps},
          {"accum", s.accum},
          {"policy", std::string(policy_name(s.policy))},
          {"actions", s.num_actions()},
          {"cost", o.cost.description},
          {"memory_unit", o.cost.memory_unit},
          {"makespan", m.makespan},
          {"step_time", m.step_time},
          {"steady", m.steady},
          {"samples_per_second", m.samples_per_second},
          {"tokens_per_second", m.tokens_per_second},
          {"bubble", m.bubble},
          {"steady_bubble", m.steady_bubble},
          {"peak_memory", m.peak_memory},
          {"peak_device", m.peak_device},
          {"device", devices},
          {"stage", stages},
          {"critical_path", path}};
}

// FILE.ext -> FILE-name.ext, for one file per schedule of a comparison.
std::string per_schedule(const std::string& path, const std::string& name, bool many) {
  if (!many) return path;
  size_t dot = path.rfind('.');
  size_t slash = path.rfind('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return path + "-" + name;
  return path.substr(0, dot) + "-" + name + path.substr(dot);
}

void write(const std::string& path, const std::string& text) {
  try {
    write_file_atomic(user_path(path), text);
  } catch (const std::runtime_error& e) {
    throw RunError(e.what());
  }
}

void write_outputs(const std::vector<Outcome>& all, const SimFlags& f) {
  const bool many = all.size() > 1;
  if (!f.export_path.empty()) {
    if (many) throw UsageError("--export writes one schedule: use it with --schedule");
    // A schedule PyTorch's CSV cannot hold is refused (FormatError, exit 2) before any file is written.
    const std::string& p = f.export_path;
    if (p.size() >= 4 && (p.compare(p.size() - 4, 4, ".csv") == 0 || p.compare(p.size() - 4, 4, ".CSV") == 0))
      (void)to_csv(all.front().schedule);
  }
  if (!f.trace_path.empty())
    for (const auto& o : all) {
      std::string p = per_schedule(f.trace_path, o.schedule.name, many);
      write(p, to_chrome_json(o.sim.trace));
      std::cout << "wrote " << p << " (Chrome/Perfetto trace: ui.perfetto.dev)\n";
    }
  if (!f.svg_path.empty()) {
    std::vector<SvgPanel> panels;
    for (const auto& o : all)
      panels.push_back({&o.sim.trace, fmt::format("{}   step {}   bubble {:.1f}%   peak {}", o.schedule.name,
                                                  fmt_time(o.metrics.step_time), 100 * o.metrics.bubble,
                                                  fmt_mem(o.metrics.peak_memory, o.cost.memory_unit))});
    write(f.svg_path, timeline_svg(panels));
    std::cout << "wrote " << f.svg_path << "\n";
  }
  if (!f.memory_path.empty())
    for (const auto& o : all) {
      std::string p = per_schedule(f.memory_path, o.schedule.name, many);
      std::string csv = fmt::format("device,time,memory_{}\n", o.cost.memory_unit == "B" ? "bytes" : o.cost.memory_unit);
      for (int d = 0; d < o.schedule.devices(); ++d)
        for (const auto& [time, bytes] : memory_timeline(o.sim.trace, d))
          csv += fmt::format("{},{},{}\n", d, time, bytes);
      write(p, csv);
      std::cout << "wrote " << p << " (memory timeline)\n";
    }
  if (!f.json_path.empty()) {
    json j = {{"format", "paci-sim-summary"}, {"version", 1}, {"results", json::array()}};
    for (const auto& o : all) j["results"].push_back(summary_json(o));
    write(f.json_path, j.dump(2) + "\n");
    std::cout << "wrote " << f.json_path << "\n";
  }
  if (!f.export_path.empty()) {
    if (many) throw UsageError("--export writes one schedule: use it with --schedule");
    save_schedule(all.front().schedule, user_path(f.export_path));
    std::cout << "wrote " << f.export_path << "\n";
  }
}

// --sweep KEY=A:B (doubling), KEY=A:B:STEP or KEY=A,B,C (cli/list_flags.h).
std::pair<std::string, std::vector<int>> parse_sweep(const std::string& spec) {
  SweepSpec sw = cli::parse_sweep(spec);
  return {sw.key, sw.values};
}

void run_sweep(const std::vector<std::string>& names, const SimFlags& base) {
  auto [key, values] = parse_sweep(base.sweep);
  std::string csv = fmt::format("{},schedule,makespan,step_time,samples_per_second,tokens_per_second,bubble,"
                                "steady_bubble,peak_memory,peak_activations,max_drift\n", key);
  size_t done = 0, total = values.size() * names.size();
  for (int v : values) {
    SimFlags f = base;
    if (key == "microbatches") f.sched.microbatches = v;
    else if (key == "stages") f.sched.stages = v;
    else if (key == "steps") f.sched.steps = v;
    else if (key == "accum") f.sched.accum = v;
    else if (key == "virtual") f.sched.virtual_stages = v;
    else f.mb_size = v;
    for (const auto& name : names) {
      std::cerr << fmt::format("[{}/{}] {}={} {}\n", ++done, total, key, v, name);
      Outcome o = run_one(name, f, true);
      const TraceMetrics& m = o.metrics;
      csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{}\n", v, o.schedule.name, m.makespan, m.step_time,
                         m.samples_per_second, m.tokens_per_second, m.bubble, m.steady_bubble, m.peak_memory,
                         peak_activations(m), max_drift(m));
    }
  }
  if (base.csv.empty()) {
    std::cout << csv;
  } else {
    write(base.csv, csv);
    std::cout << "wrote " << base.csv << "\n";
  }
}

void run_sim(const SimFlags& f) {
  const ScheduleFlags& sf = f.sched;
  int modes = !sf.schedule.empty() + !f.compare.empty() + !sf.file.empty();
  if (modes != 1) throw UsageError("give exactly one of --schedule NAME, --compare A,B,... or --file FILE");
  std::vector<std::string> names;
  if (!sf.schedule.empty()) names = {sf.schedule};
  else if (!f.compare.empty()) names = parse_compare_list(f.compare);
  else names = {"(file)"};
  if (names.empty()) throw UsageError("--compare: give schedule names separated by commas");
  for (const auto& n : names)
    if (sf.file.empty() && !find_schedule(n) && n != "paci-dynamic") {
      std::string all;
      for (const auto& i : schedule_catalog()) all += (all.empty() ? "" : ", ") + i.name;
      throw UsageError(fmt::format("unknown schedule '{}' (allowed: {}, paci-dynamic)", excerpt(n), all));
    }
  {
    // A swept parameter need not be given.
    std::string swept = f.sweep.empty() ? "" : parse_sweep(f.sweep).first;
    if (sf.file.empty() && ((sf.stages < 1 && swept != "stages") || (sf.microbatches < 1 && swept != "microbatches")))
      throw UsageError("--stages and --microbatches are required (>= 1)");
  }
  if (sf.steps < 1) throw UsageError(fmt::format("--steps must be >= 1 (got {})", sf.steps));
  if (!(f.jitter >= 0 && f.jitter <= kMaxJitter))
    throw UsageError(fmt::format("--jitter must be in 0..{} (a log-normal sigma; got {})", kMaxJitter, f.jitter));
  if (!(f.memory_limit >= 0) || !std::isfinite(f.memory_limit))
    throw UsageError(fmt::format("--memory-limit must be a finite number >= 0 GiB (got {})", f.memory_limit));
  if (f.link_bw && !(*f.link_bw > 0 && *f.link_bw <= 1e9))
    throw UsageError(fmt::format("--link-bw must be in (0, 1e9] GB/s (got {})", *f.link_bw));
  if (f.link_latency && !(*f.link_latency >= 0 && *f.link_latency <= 1e9))
    throw UsageError(fmt::format("--link-latency must be in 0..1e9 microseconds (got {})", *f.link_latency));
  if (f.efficiency && !(*f.efficiency > 0 && *f.efficiency <= 1))
    throw UsageError(fmt::format("--efficiency must be in (0, 1] (got {})", *f.efficiency));
  if (f.mb_size < 1 || f.mb_size > (1 << 20))
    throw UsageError(fmt::format("--mb-size must be in 1..{} (got {})", 1 << 20, f.mb_size));
  // Outputs are checked before the work, so a bad path fails first and leaves nothing.
  {
    const bool many = names.size() > 1;
    const std::pair<const char*, const std::string*> outs[] = {
        {"--json", &f.json_path}, {"--svg", &f.svg_path}, {"--csv", &f.csv}};
    for (const auto& [flag, path] : outs)
      if (!path->empty()) check_output_writable(user_path(*path), flag);
    const std::pair<const char*, const std::string*> per[] = {
        {"--trace", &f.trace_path}, {"--memory", &f.memory_path}, {"--export", &f.export_path}};
    for (const auto& [flag, path] : per)
      if (!path->empty())
        for (const auto& n : names) check_output_writable(user_path(per_schedule(*path, n, many)), flag);
  }
  if (!f.sweep.empty()) {
    if (!sf.file.empty()) throw UsageError("--sweep generates schedules: use --schedule or --compare");
    run_sweep(names, f);
    return;
  }
  // A generated schedule's size is known from the flags: for a large one, the heap its
  // vectors come from is made of huge pages first (huge_pages.h); some 100 bytes an action
  // cover the programs, the index and a summary simulation's buffers.
  if (sf.file.empty()) {
    const double actions = 3.0 * sf.stages * sf.virtual_stages.value_or(1) * sf.microbatches * sf.steps;
    if (actions > 0) prepare_huge_heap(static_cast<size_t>(std::min(1e11, 100 * actions)));
  }
  std::vector<Outcome> all;
  for (const auto& n : names) all.push_back(run_one(n, f, false));
  if (all.size() == 1) print_one(all.front());
  else print_compare(all);
  write_outputs(all, f);
}

}  // namespace

void add_sim_command(CLI::App& app) {
  auto f = std::make_shared<SimFlags>();
  auto* cmd = app.add_subcommand(
      "sim", "Simulate schedules with a cost model: step time, throughput, bubbles, memory, drift; "
             "compare, sweep, and write JSON, Perfetto traces and SVG timelines");
  f->sched.schedule = "";
  f->sched.stages = f->sched.microbatches = 0;  // required
  f->sched.steps = 4;                           // enough for the steady state of most schedules
  f->sched.add_to(cmd, "Schedule name (see `paci schedules`; zb-1p/zb-2p are built from the cost model here)");
  cmd->add_option("--compare", f->compare,
                  "Schedules to compare, e.g. gpipe,1f1b,paci,zb-1p,zb-2p (paci-dynamic: paci under the runtime policy)");
  cmd->add_option("--cost", f->cost,
                  "Uniform costs of one device's share of the model, e.g. f=1,b=2,w=1,opt=0.1,comm=0.05 (keys "
                  "f,b,i,w,opt,fb,comm,bw,msg,act,ifree,weights,grads,optstate; fb: an overlapped F&B, default f+b; "
                  "default f=1,b=2); interleaved "
                  "chunks and the two stages of a V device get 1/v each");
  cmd->add_option("--cost-file", f->cost_file,
                  "Per-stage JSON cost file (format paci-cost), or a calibration from `paci calibrate` (its pieces "
                  "summed over balanced stages)");
  cmd->add_option("--partition", f->partition,
                  "With --model or a calibration: the stage layout, e.g. E+3,3.5,3.5,3+H (blocks, halves allowed; "
                  "E embedding, H head; default: the partition minimising the slowest stage; see README)");
  cmd->add_option("--model", f->model, "Analytic GPT cost model: gpt2-124m, gpt2-350m, gpt2-774m, gpt2-1558m, "
                                       "custom:layers=L,d=D,heads=H,seq=T,vocab=V");
  cmd->add_option("--device", f->device, "Device of --model: h100, h200, custom:flops=..,membw=..,linkbw=..,mem=..")
      ->capture_default_str();
  cmd->add_option("--mb-size", f->mb_size, "Sequences per micro-batch (--model)")->capture_default_str();
  cmd->add_option("--precision", f->precision, "bf16 (a bf16 copy + fp32 master), autocast (fp32 master; bf16 casts per micro-batch) or fp32 (--model)")->capture_default_str();
  cmd->add_option("--link-bw", f->link_bw, "Link bandwidth per direction in GB/s (--model; default: device's)");
  cmd->add_option("--link-latency", f->link_latency, "Link latency per transfer in microseconds (--model)");
  cmd->add_option("--efficiency", f->efficiency, "Achievable share of peak FLOP/s for GEMMs (--model; default 0.7)");
  cmd->add_option("--memory-limit", f->memory_limit,
                  "GiB per device that zb-1p/zb-2p must fit in (default: the device's memory with --model)");
  cmd->add_flag("--dynamic", f->dynamic,
                "paci only: let the PACI runtime policy choose the order (backward first, forward while "
                "in-flight < P-s) instead of the static program");
  cmd->add_option("--jitter", f->jitter, "Log-normal noise on every duration, sigma (mean kept)");
  cmd->add_option("--seed", f->seed, "Seed of --jitter")->capture_default_str();
  cmd->add_option("--straggler", f->stragglers, "STAGE=FACTOR: multiply a stage's durations (repeatable)");
  cmd->add_option("--sweep", f->sweep, "KEY=A:B (doubling), A:B:STEP or A,B,C over microbatches, stages, steps, "
                                       "accum, virtual, mb-size: writes CSV");
  cmd->add_option("--csv", f->csv, "Where --sweep writes its CSV (default stdout)");
  cmd->add_option("--json", f->json_path, "Write the summary as JSON");
  cmd->add_option("--trace", f->trace_path,
                  "Write a Chrome/Perfetto trace (FILE-<schedule>.json per schedule with --compare)");
  cmd->add_option("--svg", f->svg_path, "Write an SVG timeline (all compared schedules on one time scale)");
  cmd->add_option("--memory", f->memory_path,
                  "Write each device's memory timeline as CSV (device,time,memory; FILE-<schedule>.csv with --compare)");
  cmd->add_option("--export", f->export_path, "Write the simulated schedule (e.g. the --dynamic order) as .json/.csv");
  cmd->callback([f] {
    try {
      run_sim(*f);
    } catch (const CostError& e) {
      throw UsageError(e.what());
    }
  });
}

}  // namespace paci::cli
