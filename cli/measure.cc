#include "cli/measure.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <thread>
#include <cstring>

#include <fmt/format.h>

#include "cli/common.h"
#include "exec/runtime/measured_trace.h"

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

Schedule calibration_schedule(int S, int M, int N) {
  Schedule s;
  s.name = "calibration";
  s.spec = {1, S, M, N};
  s.accum = M;
  s.stage_device.assign(S, 0);
  s.programs.resize(1);
  auto& p = s.programs[0];
  for (int m = 0; m < M * N; ++m) {
    for (int st = 0; st < S; ++st) p.push_back(Fwd(st, m));
    if (m % 2 == 0) {
      for (int st = S - 1; st >= 0; --st) p.push_back(Bwd(st, m));
    } else {
      for (int st = S - 1; st >= 0; --st) p.push_back(BwdI(st, m));
      for (int st = S - 1; st >= 0; --st) p.push_back(BwdW(st, m));
    }
    if ((m + 1) % M == 0)
      for (int st = 0; st < S; ++st) p.push_back(Opt(st));
  }
  return s;
}

std::vector<StageComposition> compositions(const std::vector<StagePartition>& partition) {
  std::vector<StageComposition> out;
  for (const auto& p : partition) out.push_back(composition_of(p));
  return out;
}

Calibration calibrate_cpu(const GptConfig& model, int B, int T, int M, int N, uint64_t seed, std::ostream& log,
                          const ExecDevice& device, const std::vector<StagePartition>& also) {
  const int L = model.layers, U = 2 * L + 2;
  std::vector<std::vector<StagePartition>> parts = {partition_from_layers(model, {0, L, 0}),
                                                    partition_from_layers(model, {L})};
  // E + block 0's attention half | its MLP half alone | the rest: the two halves apart.
  if (L >= 1) parts.push_back(partition_from_units(model, {0, 2, 3, U}));
  if (!also.empty() && std::find(parts.begin(), parts.end(), also) == parts.end()) parts.push_back(also);
  std::vector<MeasuredRun> runs;
  std::vector<CalibrationRun> fit_runs;
  for (const auto& part : parts) {
    const int S = static_cast<int>(part.size());
    log << fmt::format("calibrate: measuring {} stage{}, partition {} ({} micro-batches of {}x{}, {} steps)...\n", S,
                       S > 1 ? "s" : "", format_layout(part), M, B, T, N);
    runs.push_back(measure(calibration_schedule(S, M, N), model, part, B, T, seed, device));
  }
  for (size_t k = 0; k < parts.size(); ++k) {
    CalibrationRun r;
    r.trace = &runs[k].trace;
    r.stages = compositions(parts[k]);
    for (const StageMemory& m : runs[k].memory)
      r.sizes.push_back({static_cast<double>(m.slot_bytes), static_cast<double>(m.param_bytes) / sizeof(float),
                         static_cast<double>(m.workspace_bytes)});
    fit_runs.push_back(r);
  }
  Calibration c;
  try {
    c = fit_calibration(fit_runs);
  } catch (const CalibrationError& e) {
    throw RunError(e.what());
  }
  // Contention: the whole-model run again, as two copies at once on two threads (two devices
  // sharing this machine's memory bandwidth and caches), against the same run alone.
  {
    log << fmt::format("calibrate: measuring contention: partition {} twice at once...\n", format_layout(parts[1]));
    MeasuredRun together[2];
    std::exception_ptr failed[2];
    std::vector<std::thread> copies;
    for (int k = 0; k < 2; ++k)
      copies.emplace_back([&, k] {
        try {
          together[k] = measure(calibration_schedule(1, M, N), model, parts[1], B, T, seed + k, device);
        } catch (...) {
          failed[k] = std::current_exception();
        }
      });
    for (auto& t : copies) t.join();
    for (auto& f : failed)
      if (f) std::rethrow_exception(f);
    c.contention = fit_contention(runs[1].trace, {&together[0].trace, &together[1].trace});
  }
  // In-process transfers are one copy of the message; time it.
  const size_t n = static_cast<size_t>(B) * T * model.channels;
  std::vector<float> a(n, 1.0f), b(n);
  const int reps = 50;
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) {
    std::memcpy(b.data(), a.data(), n * sizeof(float));
    a[r % n] = b[(r * 7) % n];
  }
  const double per = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  c.layers = model.layers;
  c.channels = model.channels, c.heads = model.heads, c.vocab = model.vocab_size, c.tied = model.tied_embeddings;
  c.boundary_bytes = static_cast<double>(n * sizeof(float));
  c.bandwidth = c.boundary_bytes / std::max(per, 1e-9);
  c.latency = 0;
  c.source = fmt::format("{}, {}, B={} T={}", device.description.empty() ? "cpu" : device.description,
                         describe(model), B, T);
  return c;
}

}  // namespace paci::cli
