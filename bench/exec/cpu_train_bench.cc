// Single-stage CPU training throughput, set against the same machine's sgemm measured in the
// same run, plus activation memory per pipeline stage against the IR's prediction.
//
//   cpu_train_bench [--cases tiny:4:64,gpt2-124m:1:256] [--threads 1,2] [--min_seconds S]
//                   [--md PATH] [--csv PATH] [--commit SHA] [--date D]
//
// Throughput: a training step is forward + backward + AdamW (which also zeroes the gradients)
// of the whole model as one StageModel; FLOPs by llm.c's convention (flops_per_token in
// config.h). The sgemm reference times cblas_sgemm alone at every linear-layer GEMM of that
// step (forward NT, input-gradient NN, weight-gradient TN), weighted by how often the step
// runs each shape.
// Memory: tiny split into 4 stages (embedding | layer 0 | layer 1 | head) under 1F1B, the
// runtime's measured peak slots in use × bytes per slot against analyze()'s in-flight peak.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/exec/timed_backend.h"
#include "exec/model/blas_kernel.h"
#include "exec/model/config.h"
#include "exec/model/cpu_backend.h"
#include "exec/model/optimizer.h"
#include "exec/model/partition.h"
#include "exec/model/stage_model.h"
#include "exec/runtime/batch_source.h"
#include "exec/runtime/runtime.h"
#include "schedules/analysis.h"
#include "schedules/registry.h"

namespace paci {
namespace bench {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Case {
  std::string preset;
  int B = 0, T = 0;
  std::string label() const {
    return preset + " B=" + std::to_string(B) + " T=" + std::to_string(T);
  }
};

struct Options {
  std::vector<Case> cases = {{"tiny", 4, 64}, {"tiny", 32, 64}, {"gpt2-124m", 1, 256}};
  std::vector<int> threads = {1, 2};
  double min_seconds = 2.0;  // per case and thread count, after one warm-up step
  std::string md, csv, commit = "unknown", date = "unknown";
};

// ---- sgemm at the model's shapes ----

struct GemmShape {
  int M, N, K;
  CBLAS_TRANSPOSE ta, tb;
  int count;  // calls per training step
  double flops() const { return 2.0 * M * N * K; }
};

// The linear layers of one training step: out[N,OC] = in[N,IC]·Wᵀ (NT), din = dout·W (NN),
// dW = doutᵀ·in (TN).
std::vector<GemmShape> step_gemms(const GptConfig& cfg, int B, int T) {
  const int N = B * T, C = cfg.channels, V = cfg.vocab_size, L = cfg.layers;
  const std::pair<int, int> layer[] = {{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}};
  std::vector<GemmShape> out;
  auto add = [&](int IC, int OC, int count) {
    out.push_back({N, OC, IC, CblasNoTrans, CblasTrans, count});
    out.push_back({N, IC, OC, CblasNoTrans, CblasNoTrans, count});
    out.push_back({OC, IC, N, CblasTrans, CblasNoTrans, count});
  };
  for (const auto& [ic, oc] : layer) add(ic, oc, L);
  add(C, V, 1);  // LM head
  return out;
}

struct SgemmResult {
  std::vector<double> best;  // per shape: the fastest call seen
  std::vector<int> count;
  std::vector<double> flops;
  double seconds_per_step() const {  // Σ count · time(shape)
    double s = 0;
    for (size_t i = 0; i < best.size(); ++i) s += count[i] * best[i];
    return s;
  }
  double gflops() const {
    double f = 0;
    for (size_t i = 0; i < best.size(); ++i) f += count[i] * flops[i];
    return f / seconds_per_step() * 1e-9;
  }
};

// Times every shape (at least 3 calls and min_seconds_per_shape each) and keeps, per shape,
// the fastest call of this and of earlier rounds in *r: the bench runs one round before and
// one after the training steps, so a burst of load from other processes hits neither alone.
void time_sgemm(const std::vector<GemmShape>& shapes, double min_seconds_per_shape,
                SgemmResult* r) {
  size_t a = 0, b = 0, c = 0;
  for (const GemmShape& s : shapes) {
    a = std::max(a, static_cast<size_t>(s.M) * s.K);
    b = std::max(b, static_cast<size_t>(s.K) * s.N);
    c = std::max(c, static_cast<size_t>(s.M) * s.N);
  }
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-0.05f, 0.05f);
  std::vector<float> A(a), Bm(b), Cm(c, 0.0f);
  for (float& x : A) x = u(rng);
  for (float& x : Bm) x = u(rng);
  if (r->best.empty()) {
    r->best.assign(shapes.size(), INFINITY);
    for (const GemmShape& s : shapes) {
      r->count.push_back(s.count);
      r->flops.push_back(s.flops());
    }
  }
  for (size_t k = 0; k < shapes.size(); ++k) {
    const GemmShape& s = shapes[k];
    const int lda = s.ta == CblasNoTrans ? s.K : s.M;
    const int ldb = s.tb == CblasNoTrans ? s.N : s.K;
    auto call = [&] {
      cblas_sgemm(CblasRowMajor, s.ta, s.tb, s.M, s.N, s.K, 1.0f, A.data(), lda, Bm.data(), ldb,
                  1.0f, Cm.data(), s.N);
    };
    call();  // warm-up (and page in C)
    // Best of several calls: other processes share the machine, and the training steps are
    // also reported as best of several.
    double best = INFINITY;
    int reps = 0;
    const auto t0 = Clock::now();
    do {
      const auto t1 = Clock::now();
      call();
      best = std::min(best, since(t1));
      ++reps;
    } while (since(t0) < min_seconds_per_shape || reps < 3);
    r->best[k] = std::min(r->best[k], best);
  }
}

// ---- training steps ----

// Per step, from the fastest timed step (the machine is shared; the best step is the
// closest to its unloaded speed); the median step is kept for the CSV.
struct TrainResult {
  int steps = 0;
  double seconds = 0, median_seconds = 0;
  double fwd = 0, bwd = 0, opt = 0;
  std::array<double, kNumOps> op_seconds{};
  double gemm_seconds = 0, gemm_flops = 0;
  float first_loss = 0;  // forward of the first timed step (after one full warm-up step)
};

TrainResult time_training(Backend& be, const GptConfig& cfg, int B, int T, double min_seconds) {
  TimedBackend tb(be);
  const StagePartition whole = partition_from_layers(cfg, {cfg.layers})[0];
  StageModel m(tb, cfg, whole, B, T, /*slots=*/1, /*seed=*/1337);
  AdamWConfig ocfg;
  ocfg.lr = 1e-4;
  AdamW opt(tb, m.layout(), ocfg);
  SyntheticBatches data(B, T, cfg.vocab_size, 42);
  std::vector<int> tokens(B * T), targets(B * T);

  TrainResult r;
  auto step = [&](int64_t i) {
    data.get(i, tokens.data(), targets.data());
    auto t0 = Clock::now();
    const float loss = m.forward(0, m.params(), tokens.data(), nullptr, targets.data(), nullptr);
    const double f = since(t0);
    t0 = Clock::now();
    m.backward(0, m.params(), nullptr, nullptr, 1.0f);
    const double b = since(t0);
    t0 = Clock::now();
    if (cfg.tied_embeddings) sum_tied_embedding_grads(m, m);
    opt.step(m.params(), m.grads());  // also zeroes the gradients
    const double o = since(t0);
    return std::array<double, 4>{f, b, o, loss};
  };
  step(0);  // warm-up: page in the buffers, OpenBLAS buffers
  std::vector<double> times;
  const auto t0 = Clock::now();
  double best = INFINITY;
  // At least min_seconds and 2 steps; a third if it fits in 3 · min_seconds.
  do {
    tb.reset();
    const auto s = step(r.steps + 1);
    const double total = s[0] + s[1] + s[2];
    if (r.steps == 0) r.first_loss = static_cast<float>(s[3]);
    times.push_back(total);
    if (total < best) {
      best = total;
      r.fwd = s[0];
      r.bwd = s[1];
      r.opt = s[2];
      for (int i = 0; i < kNumOps; ++i) r.op_seconds[i] = tb.seconds(static_cast<Op>(i));
      r.gemm_seconds = tb.gemm_seconds();
      r.gemm_flops = tb.gemm_flops();
    }
    ++r.steps;
  } while (since(t0) < min_seconds || r.steps < 2 ||
           (r.steps < 3 && since(t0) + best <= 3 * min_seconds));
  r.seconds = best;
  std::sort(times.begin(), times.end());
  r.median_seconds = times[times.size() / 2];
  return r;
}

// ---- memory per stage ----

struct StageMem {
  int stage = 0;
  std::string layers;
  int inflight_peak = 0;
  size_t slot_bytes = 0;
  int slots_allocated = 0, peak_slots_in_use = 0;
  size_t predicted() const { return inflight_peak * slot_bytes; }
};

std::vector<StageMem> measure_memory(int B, int T, int M, int N) {
  const GptConfig cfg = preset("tiny");
  const Schedule s = make_schedule("1f1b", {4, M, N});
  const Analysis an = analyze(s);
  RunConfig rc;
  rc.model = cfg;
  rc.partition = partition_from_layers(cfg, {0, 1, 1, 0});
  SyntheticBatches data(B, T, cfg.vocab_size, 7);
  PipelineRuntime rt(s, rc, data);
  const RunResult res = rt.run();
  std::vector<StageMem> out;
  for (int st = 0; st < rt.num_stages(); ++st) {
    const StagePartition& p = rc.partition[st];
    StageMem sm;
    sm.stage = st;
    sm.layers = p.num_layers() > 0 ? "layer " + std::to_string(p.first_layer) : "";
    if (p.has_embedding) sm.layers = "embedding" + (sm.layers.empty() ? "" : " + " + sm.layers);
    if (p.has_head) sm.layers += sm.layers.empty() ? "head" : " + head";
    sm.inflight_peak = an.stages[st].inflight_peak;
    sm.slot_bytes = rt.stage(st).activation_bytes_per_slot();
    sm.slots_allocated = res.memory[st].slots;
    sm.peak_slots_in_use = res.memory[st].peak_slots_in_use;
    if (res.memory[st].slot_bytes != sm.slot_bytes) {
      throw std::runtime_error("runtime reports a different slot size for stage " +
                               std::to_string(st));
    }
    out.push_back(sm);
  }
  return out;
}

// ---- output ----

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a.empty() ? "n/a" : a + ", " + b + ", " + c + " (1, 5, 15 min)";
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--cases") {
      o.cases.clear();
      for (const std::string& c : split(value(), ',')) {
        const auto f = split(c, ':');
        if (f.size() != 3) throw std::invalid_argument("--cases wants preset:B:T, got " + c);
        o.cases.push_back({f[0], std::stoi(f[1]), std::stoi(f[2])});
      }
    } else if (a == "--threads") {
      o.threads.clear();
      for (const std::string& t : split(value(), ',')) o.threads.push_back(std::stoi(t));
    } else if (a == "--min_seconds") {
      o.min_seconds = std::stod(value());
    } else if (a == "--md") {
      o.md = value();
    } else if (a == "--csv") {
      o.csv = value();
    } else if (a == "--commit") {
      o.commit = value();
    } else if (a == "--date") {
      o.date = value();
    } else {
      throw std::invalid_argument("unknown flag " + a);
    }
  }
  return o;
}

struct Row {
  Case c;
  int threads = 0;
  double flops_per_token = 0;
  SgemmResult sgemm;
  TrainResult train;
  double tokens_per_s() const { return c.B * c.T / train.seconds; }
  double gflops() const { return tokens_per_s() * flops_per_token * 1e-9; }
  double fraction() const { return gflops() / sgemm.gflops(); }
  double ms_per_step() const { return 1e3 * train.seconds; }
};

int run_main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const std::string load_before = loadavg();
  std::vector<Row> rows;
  for (int threads : o.threads) {
    CpuBackendOptions bo;
    bo.blas_threads = threads;
    CpuBackend be(bo);
    for (const Case& c : o.cases) {
      Row r;
      r.c = c;
      r.threads = threads;
      GptConfig cfg = preset(c.preset);
      r.flops_per_token = flops_per_token(cfg, c.T);
      const std::vector<GemmShape> shapes = step_gemms(cfg, c.B, c.T);
      // The reference is OpenBLAS at its best: its own threading, `threads` threads. The
      // backend runs BLAS on one thread per tile (cpu_kernels.h).
      openblas_set_num_threads(threads);
      time_sgemm(shapes, 0.1, &r.sgemm);
      openblas_set_num_threads(1);
      r.train = time_training(be, cfg, c.B, c.T, o.min_seconds);
      openblas_set_num_threads(threads);
      time_sgemm(shapes, 0.1, &r.sgemm);
      openblas_set_num_threads(1);
      std::fprintf(stderr,
                   "%-24s threads=%d  %8.1f tok/s  %7.1f ms/step  %6.1f GFLOP/s  sgemm %6.1f "
                   "GFLOP/s  fraction %.2f  (median %.1f ms, loss %.6f)\n",
                   c.label().c_str(), threads, r.tokens_per_s(), r.ms_per_step(), r.gflops(),
                   r.sgemm.gflops(), r.fraction(), 1e3 * r.train.median_seconds,
                   r.train.first_loss);
      rows.push_back(r);
    }
  }
  const int memB = 4, memT = 64, memM = 8, memN = 2;
  const std::vector<StageMem> mem = measure_memory(memB, memT, memM, memN);
  const std::string load_after = loadavg();

  std::ostringstream md, csv;
  md << "# CPU training throughput and activation memory\n\n"
     << "Written by `bench/exec/run` (`//bench/exec:cpu_train_bench`); do not edit by hand.\n\n"
     << "| | |\n|---|---|\n"
     << "| machine | " << cpu_model() << ", nproc " << std::thread::hardware_concurrency() << " |\n"
     << "| commit | " << o.commit << " |\n"
     << "| date | " << o.date << " |\n"
     << "| load average before / after the run | " << load_before << " / " << load_after << " |\n"
     << "| BLAS | " << blas_description() << " |\n\n";

  md << "## Single-stage training steps\n\n"
     << "One step = forward + backward + AdamW (+ zero_grad) of the whole model as one "
        "StageModel. FLOPs per token by llm.c's convention (`flops_per_token`: 6·N + 6·L·C·T). "
        "*sgemm* is cblas_sgemm alone, timed in this run at every linear-layer GEMM of the same "
        "step (forward NT, input-gradient NN, weight-gradient TN), weighted by calls per step; "
        "*fraction* = achieved / sgemm. *GEMM in model* is the model's own matmul calls "
        "(FLOPs / time inside them).\n\n"
     << "| model | B | T | BLAS threads | tokens/s | ms/step | achieved GFLOP/s | sgemm "
        "GFLOP/s | fraction | GEMM in model GFLOP/s | time in linear GEMMs | loss of step 2 |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  csv << "section,model,batch,seq,blas_threads,stage,metric,value\n";
  auto put = [&csv](const std::string& section, const Row* r, int stage, const std::string& metric,
                    double v) {
    csv << section << ",";
    if (r) {
      csv << r->c.preset << "," << r->c.B << "," << r->c.T << "," << r->threads;
    } else {
      csv << "tiny,,,";
    }
    csv << "," << (stage >= 0 ? std::to_string(stage) : "") << "," << metric << ","
        << fmt("%.6g", v) << "\n";
  };
  for (const Row& r : rows) {
    const double gemm_share = r.train.gemm_seconds / r.train.seconds;
    md << "| " << r.c.preset << " | " << r.c.B << " | " << r.c.T << " | " << r.threads << " | "
       << fmt("%.0f", r.tokens_per_s()) << " | " << fmt("%.1f", r.ms_per_step()) << " | "
       << fmt("%.1f", r.gflops()) << " | " << fmt("%.1f", r.sgemm.gflops()) << " | "
       << fmt("%.0f%%", 100 * r.fraction()) << " | "
       << fmt("%.1f", r.train.gemm_flops / r.train.gemm_seconds * 1e-9) << " | "
       << fmt("%.0f%%", 100 * gemm_share) << " | " << fmt("%.9g", r.train.first_loss) << " |\n";
    put("train", &r, -1, "steps", r.train.steps);
    put("train", &r, -1, "tokens_per_s", r.tokens_per_s());
    put("train", &r, -1, "ms_per_step", r.ms_per_step());
    put("train", &r, -1, "median_ms_per_step", 1e3 * r.train.median_seconds);
    put("train", &r, -1, "first_loss", r.train.first_loss);
    put("train", &r, -1, "achieved_gflops", r.gflops());
    put("train", &r, -1, "sgemm_gflops", r.sgemm.gflops());
    put("train", &r, -1, "fraction", r.fraction());
    put("train", &r, -1, "model_gemm_gflops", r.train.gemm_flops / r.train.gemm_seconds * 1e-9);
    put("train", &r, -1, "forward_ms", 1e3 * r.train.fwd);
    put("train", &r, -1, "backward_ms", 1e3 * r.train.bwd);
    put("train", &r, -1, "optimizer_ms", 1e3 * r.train.opt);
    for (int i = 0; i < kNumOps; ++i) {
      put("kernel_ms", &r, -1, op_name(static_cast<Op>(i)), 1e3 * r.train.op_seconds[i]);
    }
  }

  // The same case with another thread count must give the same bits (GEMMs run on a fixed
  // grid of tiles, the other kernels split only independent rows, heads or elements).
  bool all_equal = true;
  for (const Row& a : rows)
    for (const Row& b : rows)
      if (a.c.label() == b.c.label() && a.train.first_loss != b.train.first_loss) all_equal = false;
  md << "\nLoss of step 2 (after one full training step) across BLAS thread counts: "
     << (all_equal ? "bitwise identical" : "**differs**") << ".\n";

  md << "\n## Where a step's time goes\n\n"
     << "Milliseconds in each backend operation during the fastest step (share of the step in "
        "brackets); the "
        "three matmul rows are the linear-layer GEMMs, attention includes its per-head "
        "GEMMs.\n\n| operation |";
  for (const Row& r : rows) md << " " << r.c.label() << ", " << r.threads << "t |";
  md << "\n|---|";
  for (size_t i = 0; i < rows.size(); ++i) md << "---:|";
  md << "\n";
  auto line = [&](const std::string& name, auto value_of) {
    md << "| " << name << " |";
    for (const Row& r : rows) {
      const double s = value_of(r);
      md << " " << fmt("%.2f", 1e3 * s) << " (" << fmt("%.0f%%", 100 * s / r.train.seconds)
         << ") |";
    }
    md << "\n";
  };
  for (int i = 0; i < kNumOps; ++i) {
    line(op_name(static_cast<Op>(i)), [i](const Row& r) { return r.train.op_seconds[i]; });
  }
  line("outside the backend", [](const Row& r) {
    double s = 0;
    for (double x : r.train.op_seconds) s += x;
    return r.train.seconds - s;
  });
  line("**forward**", [](const Row& r) { return r.train.fwd; });
  line("**backward**", [](const Row& r) { return r.train.bwd; });
  line("**optimizer**", [](const Row& r) { return r.train.opt; });
  line("**step**", [](const Row& r) { return r.train.seconds; });

  md << "\n## Reading the numbers\n\n"
     << "- Timings are the fastest of 2 or more steps, and per sgemm shape the fastest of at "
        "least 6 calls (half before, half after the steps): the machine is shared, see the "
        "load average above; the CSV also has the median step.\n"
     << "- llm.c's FLOP count charges every parameter 6 FLOPs per token, the embedding tables "
        "included. For `tiny` (untied, C = 64) wte is half of all parameters but only a "
        "lookup, so its achieved FLOP/s and the fraction exceed what the GEMMs really run "
        "(fractions above 100%); read `tiny` by its time in GEMMs and the breakdown. For "
        "`gpt2-124m` (tied) wte is the LM head, a real GEMM, and the count is close to the "
        "work done (attention is charged at full T, the causal half is not subtracted).\n";
  for (const Row& r : rows) {
    if (r.c.preset != "gpt2-124m") continue;
    std::vector<std::pair<double, std::string>> outside;
    for (int i = 0; i < kNumOps; ++i) {
      const Op op = static_cast<Op>(i);
      if (op == Op::kMatmulForward || op == Op::kMatmulBackwardInput ||
          op == Op::kMatmulBackwardWeight)
        continue;
      outside.push_back({r.train.op_seconds[i], op_name(op)});
    }
    std::sort(outside.rbegin(), outside.rend());
    md << "- " << r.c.label() << ", " << r.threads << " BLAS thread" << (r.threads > 1 ? "s" : "")
       << ": " << fmt("%.0f%%", 100 * r.fraction())
       << " of sgemm (target 50%: " << (r.fraction() >= 0.5 ? "met" : "**missed**") << "); "
       << fmt("%.0f%%", 100 * (1 - r.train.gemm_seconds / r.train.seconds))
       << " of the step is outside the linear GEMMs, mostly";
    for (size_t i = 0; i < 3 && i < outside.size(); ++i)
      md << (i ? "," : "") << " " << outside[i].second << " "
         << fmt("%.0f%%", 100 * outside[i].first / r.train.seconds);
    md << ".\n";
  }

  md << "\n## Activation memory per stage\n\n"
     << "tiny (B=" << memB << ", T=" << memT << ") in 4 stages under 1F1B (P=4, M=" << memM
     << ", N=" << memN
     << "), run by the pipeline runtime. *IR* = `analyze()` in-flight peak × "
        "`activation_bytes_per_slot()`; *measured* = the runtime's peak slots in use × slot "
        "bytes (`RunResult.memory`).\n\n"
     << "| stage | holds | bytes per slot | IR in-flight peak | IR bytes | slots allocated | "
        "measured peak slots | measured bytes | match |\n"
     << "|---:|---|---:|---:|---:|---:|---:|---:|---|\n";
  for (const StageMem& s : mem) {
    const size_t measured = s.peak_slots_in_use * s.slot_bytes;
    md << "| " << s.stage << " | " << s.layers << " | " << s.slot_bytes << " | " << s.inflight_peak
       << " | " << s.predicted() << " | " << s.slots_allocated << " | " << s.peak_slots_in_use
       << " | " << measured << " | " << (measured == s.predicted() ? "yes" : "**no**") << " |\n";
    put("memory", nullptr, s.stage, "slot_bytes", s.slot_bytes);
    put("memory", nullptr, s.stage, "ir_inflight_peak", s.inflight_peak);
    put("memory", nullptr, s.stage, "ir_bytes", s.predicted());
    put("memory", nullptr, s.stage, "measured_peak_slots", s.peak_slots_in_use);
    put("memory", nullptr, s.stage, "measured_bytes", measured);
  }

  std::fputs(md.str().c_str(), stdout);
  if (!o.md.empty()) std::ofstream(o.md) << md.str();
  if (!o.csv.empty()) std::ofstream(o.csv) << csv.str();
  return 0;
}

}  // namespace
}  // namespace bench
}  // namespace paci

int main(int argc, char** argv) {
  paci::use_best_blas_kernel(argv);
  try {
    return paci::bench::run_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cpu_train_bench: %s\n", e.what());
    return 1;
  }
}
