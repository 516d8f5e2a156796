// `paci calibrate` (measure per-layer costs on this machine) and `paci compare` (run a schedule
// for real and predict it from a calibration made on a different run, side by side).
#include <algorithm>
#include <cmath>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "cli/device.h"
#include "cli/measure.h"
#include "cli/model_flags.h"
#include "schedules/files.h"
#include "schedules/registry.h"
#include "schedules/trace/chrome.h"
#include "schedules/trace/metrics.h"
#include "schedules/validate.h"
#include "sim/simulator.h"
#include "sim/svg.h"

namespace paci::cli {
namespace {

struct CalibrateFlags {
  ModelFlags model;
  DeviceFlags device;
  std::string out = "calibration.json";
  int microbatches = 4, steps = 3;
  int repeat = 3, warmup_steps = 1;
  std::string gemm_widths = "default", gemm_tokens = "default";
  uint64_t seed = 1;
};

constexpr int kMaxRepeat = 100;

// --repeat and the warm-up counts: one line naming the flag and what is allowed.
void check_count(const char* flag, int value, int lo, int hi, const char* what) {
  if (value < lo || value > hi)
    throw UsageError(fmt::format("{} must be an integer in {}..{} ({}; got {})", flag, lo, hi, what, value));
}

// --gemm-widths / --gemm-tokens: "default", "none" (no GEMM curve) or a comma-separated list of
// 1..32 integers in 1..hi.
std::vector<int> parse_gemm_list(const char* flag, const std::string& spec, int hi, const std::vector<int>& dflt) {
  if (spec == "default") return dflt;
  if (spec == "none") return {};
  std::vector<int> out;
  size_t at = 0;
  while (at <= spec.size()) {
    const size_t comma = std::min(spec.find(',', at), spec.size());
    const std::string item = spec.substr(at, comma - at);
    bool ok = !item.empty() && item.size() <= 10 && std::all_of(item.begin(), item.end(), [](char ch) {
      return ch >= '0' && ch <= '9';
    });
    const long long v = ok ? std::stoll(item) : 0;
    if (!ok || v < 1 || v > hi || out.size() >= 32)
      throw UsageError(fmt::format("{} must be \"default\", \"none\" or a comma-separated list of 1..32 integers "
                                   "in 1..{} (got \"{}\")", flag, hi, excerpt(spec)));
    out.push_back(static_cast<int>(v));
    at = comma + 1;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}


double rel(double measured, double predicted) {
  return measured != 0 ? (predicted - measured) / measured : 0.0;
}

std::string pct(double r) { return fmt::format("{:+.1f}%", 100 * r); }

// Where the predicted busy time differs from the measured: per device and action kind, the
// summed durations of each trace, largest |difference| first.
struct ErrorSource {
  int device = 0;
  ActionKind kind = ActionKind::F;
  double measured = 0, predicted = 0;
  double diff() const { return predicted - measured; }
};
std::vector<ErrorSource> error_sources(const Trace& measured, const Trace& predicted, int devices) {
  constexpr int kKinds = 8;
  std::vector<ErrorSource> e(static_cast<size_t>(devices) * kKinds);
  for (int d = 0; d < devices; ++d)
    for (int k = 0; k < kKinds; ++k) e[d * kKinds + k].device = d, e[d * kKinds + k].kind = static_cast<ActionKind>(k);
  for (const Trace* t : {&measured, &predicted})
    for (const TraceAction& a : t->actions) {
      const size_t at = static_cast<size_t>(a.device) * kKinds + static_cast<int>(a.action.kind);
      if (a.device < 0 || a.device >= devices || static_cast<int>(a.action.kind) >= kKinds) continue;
      (t == &measured ? e[at].measured : e[at].predicted) += a.end - a.start;
    }
  std::vector<ErrorSource> out;
  for (const ErrorSource& x : e)
    if (x.measured > 0 || x.predicted > 0) out.push_back(x);
  std::stable_sort(out.begin(), out.end(),
                   [](const ErrorSource& a, const ErrorSource& b) { return std::fabs(a.diff()) > std::fabs(b.diff()); });
  return out;
}

// Both traces in one Perfetto file: devices of the measured run as processes 0.., of the
// predicted run as processes 1000.., named accordingly.
std::string merged_chrome(const Trace& measured, const Trace& predicted) {
  nlohmann::json out = nlohmann::json::parse(to_chrome_json(measured));
  nlohmann::json pred = nlohmann::json::parse(to_chrome_json(predicted));
  auto rename = [](nlohmann::json& events, int offset, const std::string& label) {
    for (auto& e : events) {
      if (e.contains("pid")) e["pid"] = e["pid"].get<int>() + offset;
      if (e.value("name", "") == "process_name") e["args"]["name"] = label + " " + e["args"]["name"].get<std::string>();
      if (e.value("name", "") == "process_sort_index") e["args"]["sort_index"] = e["pid"];
    }
  };
  rename(out["traceEvents"], 0, "measured");
  rename(pred["traceEvents"], 1000, "predicted");
  for (auto& e : pred["traceEvents"]) out["traceEvents"].push_back(e);
  out["otherData"]["predicted"] = pred.value("otherData", nlohmann::json::object());
  return out.dump() + "\n";
}

}  // namespace

void add_calibrate_command(CLI::App& app) {
  auto f = std::make_shared<CalibrateFlags>();
  auto* cmd = app.add_subcommand("calibrate",
                                 "Measure per-layer costs of a model on this machine (F, B, I, W, optimizer, "
                                 "transfers, memory) and write a calibration for `paci sim --calibration` and "
                                 "`paci compare`");
  f->model.add_to(cmd);
  f->device.add_to(cmd);
  cmd->add_option("--microbatches,-M", f->microbatches, "Micro-batches per measured step")->capture_default_str();
  cmd->add_option("--steps,-N", f->steps, "Measured steps per run (after the warm-up steps)")->capture_default_str();
  cmd->add_option("--repeat", f->repeat,
                  "Runs of each calibration layout (and of the two-device contention run), interleaved; each piece is "
                  "fitted from each stage's durations over all of them (their mean within 2.5x of the median; 1..100)")
      ->capture_default_str();
  cmd->add_option("--warmup-steps", f->warmup_steps,
                  "Steps at the start of every calibration run that are run but not counted (0..100)")
      ->capture_default_str();
  cmd->add_option("--gemm-widths", f->gemm_widths,
                  "Widths at which single-threaded GEMMs are timed for rescaling to other widths: a list such as "
                  "64,96,128, \"default\" (the model's width x 1/2, 3/4, 1, 3/2, 2) or \"none\" (no GEMM "
                  "curve: other widths are rescaled by FLOPs)")
      ->capture_default_str();
  cmd->add_option("--gemm-tokens", f->gemm_tokens,
                  "Tokens per micro-batch at which those GEMMs are timed: a list, or \"default\" (B x T x 1/2, "
                  "1, 2)")
      ->capture_default_str();
  cmd->add_option("--out,-o", f->out, "Calibration file to write")->capture_default_str();
  cmd->callback([f] {
    ExecDevice dev = make_exec_device(f->device, 3);
    if (f->microbatches < 2 || f->microbatches > 1024)
      throw UsageError(fmt::format("--microbatches must be in 2..1024 (got {})", f->microbatches));
    if (f->steps < 1 || f->steps > 1000) throw UsageError(fmt::format("--steps must be in 1..1000 (got {})", f->steps));
    check_count("--repeat", f->repeat, 1, kMaxRepeat, "runs of each calibration layout");
    check_count("--warmup-steps", f->warmup_steps, 0, 100, "steps per run that are not counted");
    // The calibration is written at the end of minutes of measuring: check the path first.
    check_output_writable(user_path(f->out), "--out");
    GptConfig cfg = f->model.config(true);
    // --partition: the layout the user will run is measured as well (and printed).
    std::vector<StagePartition> also;
    if (!f->model.partition.empty()) {
      also = partition_flag(cfg, f->model.partition, 0);
      std::cout << "partition " << format_layout(also) << " (measured with the calibration runs)\n";
    }
    const int B = f->model.batch, T = f->model.seq_len(cfg);
    CalibrateOptions o;
    o.microbatches = f->microbatches, o.steps = f->steps, o.seed = f->seed;
    o.repeat = f->repeat, o.warmup_steps = f->warmup_steps;
    o.gemm_widths = parse_gemm_list("--gemm-widths", f->gemm_widths, 1 << 16, default_gemm_widths(cfg.channels));
    o.gemm_tokens = parse_gemm_list("--gemm-tokens", f->gemm_tokens, 1 << 20, default_gemm_tokens(B * T));
    if (o.gemm_widths.empty() != o.gemm_tokens.empty())
      throw UsageError("--gemm-widths and --gemm-tokens: give both lists or \"none\" for both (got one \"none\")");
    o.also = also;
    Calibration c = calibrate_cpu(cfg, B, T, o, std::cout, dev);
    write_file_atomic(user_path(f->out), calibration_to_json(c));
    const PieceCost& a = c.attention;
    const PieceCost& m = c.mlp;
    std::cout << fmt::format(
        "per micro-batch of {}x{}: attention half F {:.2f} ms, B {:.2f} ms (I {:.2f} + W {:.2f}); MLP half F {:.2f} "
        "ms, B {:.2f} ms (I {:.2f} + W {:.2f}); head F {:.2f} ms, B {:.2f} ms; embedding F {:.2f} ms; stage overhead F "
        "{:.2f} ms\n",
        c.micro_batch, c.seq_len, 1e3 * a.f, 1e3 * a.b, 1e3 * a.i, 1e3 * a.w, 1e3 * m.f, 1e3 * m.b, 1e3 * m.i, 1e3 * m.w,
        1e3 * c.head.f,
        1e3 * c.head.b, 1e3 * c.embedding.f, 1e3 * c.stage.f);
    std::cout << fmt::format("contention (slowdown per other busy device): F {:+.1f}%, B {:+.1f}%, I {:+.1f}%, W "
                             "{:+.1f}%, OPT {:+.1f}%, FB {:+.1f}%\n",
                             100 * c.contention[0], 100 * c.contention[1], 100 * c.contention[2],
                             100 * c.contention[3], 100 * c.contention[4], 100 * c.contention[5]);
    std::cout << "wrote " << f->out << "\n";
  });
}

namespace {

struct CompareFlags {
  ScheduleFlags sched;
  ModelFlags model;
  DeviceFlags device;
  std::string calibration, trace, svg, json;
  int repeat = 3, warmup_runs = 1;
  uint64_t seed = 1;
};

}  // namespace

void add_compare_command(CLI::App& app) {
  auto f = std::make_shared<CompareFlags>();
  f->sched.steps = 6;
  auto* cmd = app.add_subcommand(
      "compare", "Run a schedule for real and predict it with the simulator from a calibration made on a different "
                 "run; print measured and predicted side by side with relative errors");
  f->sched.add_to(cmd);
  f->model.add_to(cmd);
  f->device.add_to(cmd);
  cmd->add_option("--calibration", f->calibration, "Calibration file (default: calibrate now, on separate runs)");
  cmd->add_option("--trace", f->trace, "Write both timelines to one Perfetto JSON file");
  cmd->add_option("--svg", f->svg, "Draw both timelines, measured above predicted");
  cmd->add_option("--json", f->json, "Write the comparison as JSON");
  cmd->add_option("--repeat", f->repeat,
                  "Measured runs of the schedule: the measured step time is the median of their step times, and "
                  "the per-device figures and timelines are those of the median run (1..100)")
      ->capture_default_str();
  cmd->add_option("--warmup-runs", f->warmup_runs,
                  "Runs of the schedule before the measured ones, not counted (0..100)")
      ->capture_default_str();
  cmd->callback([f] {
    check_count("--repeat", f->repeat, 1, kMaxRepeat, "measured runs of the schedule");
    check_count("--warmup-runs", f->warmup_runs, 0, 100, "runs before the measured ones");
    GptConfig cfg = f->model.config(true);
    const int B = f->model.batch, T = f->model.seq_len(cfg);
    const ScheduleRequest req = f->sched.request();
    const ScheduleBuilders builders = f->model.schedule_builders(cfg, user_path(f->calibration));
    Schedule s = !req.file.empty() && req.params.steps > 0 ? get_schedule_for_steps(req, req.params.steps, builders)
                                                           : get_schedule(req, builders);
    validate(s);
    // Under mpirun each rank runs its device; rank 0 predicts and reports.
    MpiSession* mpi = mpi_session();
    if (mpi) {
      if (f->calibration.empty())
        throw UsageError("under mpirun, give --calibration (run `paci calibrate` once, without mpirun)");
      if (mpi->size() != s.devices())
        throw UsageError(fmt::format("{} ranks were launched but {} has {} devices: use mpirun -np {}", mpi->size(),
                                     s.name, s.devices(), s.devices()));
    }
    const bool reporter = !mpi || mpi->rank() == 0;
    const std::pair<const char*, const std::string*> outs[] = {
        {"--json", &f->json}, {"--trace", &f->trace}, {"--svg", &f->svg}};
    for (const auto& [flag, path] : outs)
      if (!path->empty() && reporter) check_output_writable(user_path(*path), flag);
    std::vector<StagePartition> part = f->model.stage_partition(cfg, s.stages());
    ExecDevice dev = make_exec_device(f->device, s.stages());
    CalibrateOptions co;
    co.microbatches = std::max(2, f->sched.microbatches), co.seed = f->seed;
    co.gemm_widths = default_gemm_widths(cfg.channels), co.gemm_tokens = default_gemm_tokens(B * T);
    Calibration cal = f->calibration.empty() ? calibrate_cpu(cfg, B, T, co, std::cout, make_exec_device(f->device, 3))
                                             : load_calibration(user_path(f->calibration));
    if (!calibrated_for(cal, cfg, B, T)) {
      // Another model or micro-batch size: the calibration rescaled (by its measured GEMM times, or by FLOPs
      // for a file without them).
      try {
        cal = rescale_calibration(cal, cfg, B, T);
      } catch (const CalibrationError& e) {
        throw UsageError(e.what());
      }
      if (reporter) std::cout << "calibration " << cal.source << "\n";
    }
    if (reporter)
      std::cout << fmt::format("compare: running {} on {} stages ({} micro-batches x {} steps, partition {}) for "
                               "real{}...\n", s.name, s.stages(), s.spec.microbatches, s.spec.steps,
                               format_layout(part), mpi ? fmt::format(", one process per rank ({})", mpi->size()) : "");
    RepeatedRun runs = measure_repeated(s, cfg, part, B, T, f->seed, f->repeat, f->warmup_runs, dev, mpi);
    if (!reporter) return;
    const MeasuredRun& run = runs.runs[runs.median_run];
    SimResult sim = simulate(s, cost_for_partition(cal, compositions(part)));
    const Trace& mt = run.trace;
    Trace pt = sim.trace;
    pt.origin = "predicted";
    TraceMetrics m = compute_metrics(mt), p = compute_metrics(pt);
    // The measured step time: the median over the runs (the table below is the median run's).
    m.step_time = runs.median_step_time;
    if (m.step_time > 0) m.tokens_per_second = s.spec.microbatches * mt.tokens_per_microbatch / m.step_time;
    std::string times;
    for (double t : runs.step_times) times += fmt::format("{}{:.4f}", times.empty() ? "" : ", ", t);
    std::cout << fmt::format("measured: median step time of {} run{} ({} s){}\n", f->repeat, f->repeat > 1 ? "s" : "",
                             times,
                             f->warmup_runs > 0 ? fmt::format(", after {} warm-up run{} not counted", f->warmup_runs,
                                                              f->warmup_runs > 1 ? "s" : "")
                                                : "");

    std::cout << fmt::format("\n{:<24} {:>12} {:>12} {:>8}\n", "", "measured", "predicted", "error");
    auto line = [](const std::string& name, double a, double b, const char* fmtstr) {
      std::cout << fmt::format("{:<24} {:>12} {:>12} {:>8}\n", name, fmt::format(fmtstr, a), fmt::format(fmtstr, b),
                               pct(rel(a, b)));
    };
    line("step time (s)", m.step_time, p.step_time, "{:.4f}");
    line("throughput (tokens/s)", m.tokens_per_second, p.tokens_per_second, "{:.0f}");
    line("makespan (s)", m.makespan, p.makespan, "{:.3f}");
    std::cout << fmt::format("{:<24} {:>12} {:>12} {:>8}\n", "bubble (overall)", pct(m.bubble).substr(1),
                             pct(p.bubble).substr(1), fmt::format("{:+.1f} pt", 100 * (p.bubble - m.bubble)));
    // Measured memory is the allocator's: the most bytes each device had allocated at once.
    std::vector<double> allocated(s.devices(), 0);
    for (int st = 0; st < s.stages() && st < static_cast<int>(run.memory.size()); ++st)
      allocated[s.stage_device[st]] = static_cast<double>(run.memory[st].device_allocated_peak);
    // Per device: busy and idle time (makespan - busy), bubble, peak memory, drift.
    std::cout << fmt::format("\n{:>6} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9} {:>10} {:>10} {:>7} {:>6} {:>5}\n",
                             "device", "busy s", "pred", "idle s", "pred", "bubble", "pred", "peak MiB", "pred",
                             "error", "drift", "pred");
    for (int d = 0; d < s.devices(); ++d) {
      const DeviceMetrics &md = m.devices[d], &pd = p.devices[d];
      int mdrift = 0, pdrift = 0;
      for (int st = 0; st < s.stages(); ++st)
        if (s.stage_device[st] == d) {
          mdrift = std::max(mdrift, m.stages[st].max_drift);
          pdrift = std::max(pdrift, p.stages[st].max_drift);
        }
      std::cout << fmt::format("{:>6} {:>10.4f} {:>10.4f} {:>10.4f} {:>10.4f} {:>8.1f}% {:>8.1f}% {:>10.1f} {:>10.1f} "
                               "{:>7} {:>6} {:>5}\n",
                               d, md.busy, pd.busy, m.makespan - md.busy, p.makespan - pd.busy, 100 * md.bubble,
                               100 * pd.bubble, allocated[d] / 1048576.0, pd.peak_memory / 1048576.0,
                               pct(rel(allocated[d], pd.peak_memory)), mdrift, pdrift);
    }
    std::cout << fmt::format("peak MiB measured = allocated by the executor; process peak RSS {:.1f} MiB\n",
                             peak_rss_bytes() / 1048576.0);
    const std::vector<ErrorSource> sources = error_sources(mt, pt, s.devices());
    if (!sources.empty()) {
      double total = 0;
      for (const ErrorSource& x : sources) total += std::fabs(x.diff());
      const ErrorSource& x = sources.front();
      std::cout << fmt::format("largest source of error: {} on device {}: measured {:.4f} s, predicted {:.4f} s ({}), "
                               "{:.0f}% of the busy-time error over all devices and kinds\n",
                               kind_name(x.kind), x.device, x.measured, x.predicted, pct(rel(x.measured, x.predicted)),
                               total > 0 ? 100 * std::fabs(x.diff()) / total : 0.0);
    }
    if (!f->json.empty()) {
      nlohmann::json j;
      j["schedule"] = s.name;
      j["stages"] = s.stages();
      j["microbatches"] = s.spec.microbatches;
      j["steps"] = s.spec.steps;
      j["measured"] = {{"step_time", m.step_time}, {"tokens_per_s", m.tokens_per_second}, {"bubble", m.bubble},
                       {"makespan", m.makespan}, {"step_times", runs.step_times}};
      j["repeat"] = f->repeat;
      j["warmup_runs"] = f->warmup_runs;
      j["peak_rss_bytes"] = peak_rss_bytes();
      j["predicted"] = {{"step_time", p.step_time}, {"tokens_per_s", p.tokens_per_second}, {"bubble", p.bubble},
                        {"makespan", p.makespan}};
      for (int d = 0; d < s.devices(); ++d)
        j["devices"].push_back({{"measured_busy", m.devices[d].busy}, {"predicted_busy", p.devices[d].busy},
                                {"measured_idle", m.makespan - m.devices[d].busy},
                                {"predicted_idle", p.makespan - p.devices[d].busy},
                                {"measured_bubble", m.devices[d].bubble}, {"predicted_bubble", p.devices[d].bubble},
                                {"measured_peak_bytes", allocated[d]},
                                {"predicted_peak_bytes", p.devices[d].peak_memory}});
      for (int st = 0; st < s.stages(); ++st)
        j["stage_drift"].push_back({{"measured_max", m.stages[st].max_drift}, {"predicted_max", p.stages[st].max_drift},
                                    {"measured_mean", m.stages[st].mean_drift}, {"predicted_mean", p.stages[st].mean_drift}});
      for (const ErrorSource& x : sources)
        j["error_sources"].push_back({{"device", x.device}, {"kind", std::string(kind_name(x.kind))},
                                      {"measured", x.measured}, {"predicted", x.predicted}});
      write_file_atomic(user_path(f->json), j.dump(1) + "\n");
    }
    if (!f->trace.empty()) write_file_atomic(user_path(f->trace), merged_chrome(mt, pt));
    if (!f->svg.empty()) {
      std::vector<SvgPanel> panels = {
          {&mt, fmt::format("measured  {}  step {:.4f} s  bubble {:.1f}%", s.name, m.step_time, 100 * m.bubble)},
          {&pt, fmt::format("predicted  {}  step {:.4f} s  bubble {:.1f}%", s.name, p.step_time, 100 * p.bubble)}};
      write_file_atomic(user_path(f->svg), timeline_svg(panels));
    }
  });
}

}  // namespace paci::cli
