#include "cli/measure.h"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <memory>
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/common.h"
#include "exec/model/cpu_kernels.h"
#include "exec/runtime/measured_trace.h"
#include "schedules/trace/metrics.h"

namespace paci::cli {

MeasuredRun measure(const Schedule& s, const GptConfig& model, const std::vector<StagePartition>& partition,
                    int B, int T, uint64_t seed, const ExecDevice& device, MpiSession* mpi) {
  RunConfig rc;
  rc.make_backend = device.make_backend;
  rc.make_transport = device.make_transport;
  rc.model = model;
  rc.partition = partition;
  rc.seed = seed;
  rc.adamw.total_steps = s.spec.total_microbatches() / s.accum;
  SyntheticBatches data(B, T, model.vocab_size, seed);
  std::unique_ptr<MpiTransport> transport;
  if (mpi) {
    rc.local_devices = {mpi->rank()};
    transport = std::make_unique<MpiTransport>(s, rc.stall_timeout);
    mpi->barrier("the start of the measured run");  // every rank's clock starts together
  }
  PipelineRuntime rt(s, rc, data, transport.get());
  RunResult r = rt.run();
  if (mpi) {
    gather_run_record(*mpi, r.actions, r.memory, s.stages());
    if (mpi->rank() != 0) return {};
  }
  MeasuredRun out;
  out.memory = r.memory;
  out.trace = measured_trace(s, r.actions, r.memory, B, T);
  if (!device.description.empty()) out.trace.cost = device.description;
  return out;
}

std::vector<StageComposition> compositions(const std::vector<StagePartition>& partition) {
  std::vector<StageComposition> out;
  for (const auto& p : partition) out.push_back(composition_of(p));
  return out;
}

RepeatedRun measure_repeated(const Schedule& s, const GptConfig& model, const std::vector<StagePartition>& partition,
                             int B, int T, uint64_t seed, int repeat, int warmup, const ExecDevice& device,
                             MpiSession* mpi) {
  RepeatedRun out;
  for (int k = 0; k < warmup + repeat; ++k) {
    MeasuredRun r = measure(s, model, partition, B, T, seed, device, mpi);
    if (k < warmup) continue;
    out.step_times.push_back(r.trace.actions.empty() ? 0.0 : compute_metrics(r.trace).step_time);
    out.runs.push_back(std::move(r));
  }
  std::vector<size_t> order(out.runs.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return out.step_times[a] < out.step_times[b]; });
  const size_t n = order.size();
  if (n > 0) {
    out.median_run = order[(n - 1) / 2];
    out.median_step_time = n % 2 ? out.step_times[order[n / 2]]
                                 : 0.5 * (out.step_times[order[n / 2 - 1]] + out.step_times[order[n / 2]]);
  }
  return out;
}

std::vector<int> default_gemm_widths(int channels) {
  std::vector<int> out;
  for (double f : {0.5, 0.75, 1.0, 1.5, 2.0}) out.push_back(std::max(1, static_cast<int>(std::lround(f * channels))));
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<int> default_gemm_tokens(int tokens) {
  std::vector<int> out;
  for (double f : {0.5, 1.0, 2.0}) out.push_back(std::max(1, static_cast<int>(std::lround(f * tokens))));
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

// The run's actions after its first `warmup` steps (OPT k replaced version k; micro-batches
// are numbered step x M + j).
Trace without_warmup(Trace t, int warmup, int M) {
  std::vector<TraceAction> kept;
  for (const TraceAction& a : t.actions) {
    const bool warm = a.action.kind == ActionKind::OPT ? a.version < warmup : a.action.mb < warmup * M;
    if (!warm) kept.push_back(a);
  }
  t.actions = std::move(kept);
  return t;
}

// The actions of several runs of one layout in one trace (the fit takes medians per stage).
Trace pooled(const std::vector<Trace>& runs) {
  Trace t = runs.front();
  for (size_t k = 1; k < runs.size(); ++k) t.actions.insert(t.actions.end(), runs[k].actions.begin(), runs[k].actions.end());
  return t;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

GemmCurveTimer::GemmCurveTimer(std::vector<int> widths, std::vector<int> tokens, int vocab)
    : widths_(std::move(widths)), tokens_(std::move(tokens)), vocab_(vocab) {
  // Operands for the largest point: activations N x max(4C, V), weights max(4C, V) x C.
  const int C = *std::max_element(widths_.begin(), widths_.end());
  const int N = *std::max_element(tokens_.begin(), tokens_.end());
  const size_t wide = static_cast<size_t>(std::max(4 * C, vocab_));
  in_.assign(static_cast<size_t>(N) * wide, 0.01f);
  out_.assign(static_cast<size_t>(N) * wide, 0.01f);
  w_.assign(wide * C, 0.01f);
  dw_.assign(wide * C, 0.0f);
  samples_.resize(widths_.size() * tokens_.size());
}

void GemmCurveTimer::round() {
  size_t point = 0;
  for (int C : widths_)
    for (int N : tokens_) {
      // One linear layer in[N,IC] -> out[N,OC] (weights [OC,IC]), as cpu_kernels.h's matmul_*
      // call gemm: forward (beta 1 with a bias), input gradient, weight gradient.
      auto layer = [&](int piece, int which, int IC, int OC, bool bias) {
        auto time = [&](int pass, const auto& call) {
          auto t0 = std::chrono::steady_clock::now();
          call();
          if (rounds_ > 0) samples_[point][piece][which][pass].push_back(seconds_since(t0));
        };
        time(0, [&] {
          cpu::gemm(CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, in_.data(), IC, w_.data(), IC, bias ? 1.0f : 0.0f,
                    out_.data(), OC, 1);
        });
        time(1, [&] {
          cpu::gemm(CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, out_.data(), OC, w_.data(), IC, 1.0f, in_.data(),
                    IC, 1);
        });
        time(2, [&] {
          cpu::gemm(CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, out_.data(), OC, in_.data(), IC, 1.0f, dw_.data(),
                    IC, 1);
        });
      };
      layer(0, 0, C, 3 * C, true);  // qkv
      layer(0, 1, C, C, true);      // attproj
      layer(1, 0, C, 4 * C, true);  // fc
      layer(1, 1, 4 * C, C, true);  // fcproj
      layer(2, 0, C, vocab_, false);  // LM head
      ++point;
    }
  // Keep the operands small (gradients accumulate into `in` and `dw`).
  std::fill(in_.begin(), in_.end(), 0.01f);
  std::fill(out_.begin(), out_.end(), 0.01f);
  std::fill(dw_.begin(), dw_.end(), 0.0f);
  ++rounds_;
}

GemmCurve GemmCurveTimer::curve() const {
  GemmCurve curve;
  curve.vocab = vocab_;
  size_t point = 0;
  for (int C : widths_)
    for (int N : tokens_) {
      GemmPoint p;
      p.channels = C, p.tokens = N;
      GemmTimes* pieces[3] = {&p.attention, &p.mlp, &p.head};
      for (int piece = 0; piece < 3; ++piece)
        for (int which = 0; which < (piece == 2 ? 1 : 2); ++which) {
          const auto& s = samples_[point][piece][which];
          pieces[piece]->f += robust_mean(s[0]);
          pieces[piece]->i += robust_mean(s[1]);
          pieces[piece]->w += robust_mean(s[2]);
        }
      curve.points.push_back(p);
      ++point;
    }
  return curve;
}

Calibration calibrate_cpu(const GptConfig& model, int B, int T, const CalibrateOptions& o, std::ostream& log,
                          const ExecDevice& device) {
  const int L = model.layers, U = 2 * L + 2;
  const int M = o.microbatches, N = o.steps, W = o.warmup_steps, K = std::max(1, o.repeat);
  std::vector<std::vector<StagePartition>> parts = {partition_from_layers(model, {0, L, 0}),
                                                    partition_from_layers(model, {L})};
  // E + block 0's attention half | its MLP half alone | the rest: the two halves apart.
  if (L >= 1) parts.push_back(partition_from_units(model, {0, 2, 3, U}));
  if (!o.also.empty() && std::find(parts.begin(), parts.end(), o.also) == parts.end()) parts.push_back(o.also);
  // Contention: E + the first half of the blocks | the rest + H on two devices at once, each
  // round paired with the same partition on one device just before it (fit_contention).
  std::vector<StagePartition> pipe;
  size_t pipe_alone = parts.size();
  if (L >= 1) {
    pipe = partition_from_units(model, {0, L + 1, U});
    pipe_alone = std::find(parts.begin(), parts.end(), pipe) - parts.begin();
    if (pipe_alone == parts.size()) parts.push_back(pipe);
  }
  for (const auto& part : parts) {
    const int S = static_cast<int>(part.size());
    log << fmt::format("calibrate: measuring {} stage{}, partition {} ({} micro-batches of {}x{}, {} steps after {} "
                       "warm-up, {} run{})...\n", S, S > 1 ? "s" : "", format_layout(part), M, B, T, N, W, K,
                       K > 1 ? "s" : "");
  }
  if (!pipe.empty()) {
    log << fmt::format("calibrate: measuring contention: 2 stages on 2 devices, partition {} ({} micro-batches of "
                       "{}x{}, {} steps after {} warm-up, {} run{})...\n", format_layout(pipe), M, B, T, N, W, K,
                       K > 1 ? "s" : "");
  }
  // Every layout once per round, then the contention run: a slow spell of the machine hits
  // the runs of one round, not one layout's.
  std::vector<std::vector<Trace>> traces(parts.size());
  std::vector<std::vector<StageMemory>> memory(parts.size());
  std::vector<Trace> pipelined;
  // The GEMM curve's rounds go with the runs, so that it sees the same spells of the machine.
  std::unique_ptr<GemmCurveTimer> gemm;
  const int gemm_rounds = std::max(2, (8 + K - 1) / K);
  if (!o.gemm_widths.empty() && !o.gemm_tokens.empty()) {
    // The head's GEMMs at most at vocabulary kGemmCurveMaxVocab (cpu::gemm cuts the vocabulary
    // into tiles of 1024, so time per FLOP hardly changes beyond): the operands stay small.
    log << fmt::format("calibrate: timing single-threaded GEMMs at widths {} x tokens {} ({} rounds)...\n",
                       fmt::join(o.gemm_widths, ","), fmt::join(o.gemm_tokens, ","), K * gemm_rounds);
    gemm = std::make_unique<GemmCurveTimer>(o.gemm_widths, o.gemm_tokens,
                                            std::min(model.vocab_size, kGemmCurveMaxVocab));
    gemm->round();  // warm-up, not counted
  }
  // Each round runs the contention partition alone last, just before the contention run.
  std::vector<size_t> order;
  for (size_t k = 0; k < parts.size(); ++k)
    if (k != pipe_alone) order.push_back(k);
  if (pipe_alone < parts.size()) order.push_back(pipe_alone);
  for (int rep = 0; rep < K; ++rep) {
    for (int r = 0; gemm && r < gemm_rounds; ++r) gemm->round();
    for (size_t k : order) {
      const int S = static_cast<int>(parts[k].size());
      MeasuredRun r = measure(calibration_schedule(S, M, N + W), model, parts[k], B, T, o.seed, device);
      traces[k].push_back(without_warmup(std::move(r.trace), W, M));
      if (rep == 0) memory[k] = r.memory;
    }
    if (!pipe.empty()) {
      MeasuredRun r = measure(calibration_pipeline_schedule(M, N + W), model, pipe, B, T, o.seed, device);
      pipelined.push_back(without_warmup(std::move(r.trace), W, M));
    }
  }
  std::vector<Trace> runs;
  for (const auto& t : traces) runs.push_back(pooled(t));
  std::vector<CalibrationRun> fit_runs;
  for (size_t k = 0; k < parts.size(); ++k) {
    CalibrationRun r;
    r.trace = &runs[k];
    r.stages = compositions(parts[k]);
    for (const StageMemory& m : memory[k])
      r.sizes.push_back({static_cast<double>(m.slot_bytes), static_cast<double>(m.param_bytes) / sizeof(float),
                         static_cast<double>(m.workspace_bytes)});
    fit_runs.push_back(r);
  }
  Calibration c;
  try {
    c = fit_calibration(fit_runs);
    if (!pipe.empty()) {
      std::vector<ContentionRound> rounds;
      for (size_t r = 0; r < pipelined.size(); ++r) rounds.push_back({&pipelined[r], &traces[pipe_alone][r]});
      c.contention = fit_contention(rounds);
    }
  } catch (const CalibrationError& e) {
    throw RunError(e.what());
  }
  // In-process transfers are one copy of the message; time it.
  const size_t n = static_cast<size_t>(B) * T * model.channels;
  std::vector<float> a(n, 1.0f), b(n);
  const int reps = 50;
  auto t_copy = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) {
    std::memcpy(b.data(), a.data(), n * sizeof(float));
    a[r % n] = b[(r * 7) % n];
  }
  const double per = seconds_since(t_copy) / reps;
  c.layers = model.layers;
  c.channels = model.channels, c.heads = model.heads, c.vocab = model.vocab_size, c.tied = model.tied_embeddings;
  c.boundary_bytes = static_cast<double>(n * sizeof(float));
  c.bandwidth = c.boundary_bytes / std::max(per, 1e-9);
  c.latency = 0;
  if (gemm) c.gemm = gemm->curve();
  c.source = fmt::format("{}, {}, B={} T={}", device.description.empty() ? "cpu" : device.description,
                         describe(model), B, T);
  return c;
}

}  // namespace paci::cli
