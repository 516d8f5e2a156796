#include "exec/runtime/trainer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <memory>
#include <mutex>
#include <ostream>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "exec/model/llmc_checkpoint.h"
#include "exec/runtime/checkpoint.h"
#include "exec/runtime/evaluator.h"
#include "schedules/files.h"

namespace paci {
namespace {

std::string eta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  int s = static_cast<int>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

// Metrics JSONL written to a temporary file and renamed into place when the run ends, so a
// reader never sees a half-written file.
class MetricsFile {
 public:
  explicit MetricsFile(const std::string& path) : path_(path) {
    if (path_.empty()) return;
    out_.open(path_ + ".tmp", std::ios::trunc);
    if (!out_) throw std::invalid_argument(fmt::format("--metrics {}: cannot write", path_));
  }
  void write(const nlohmann::json& j) {
    if (path_.empty()) return;
    out_ << j.dump() << "\n";
    out_.flush();
  }
  void close() {
    if (path_.empty() || !out_.is_open()) return;
    out_.close();
    if (std::rename((path_ + ".tmp").c_str(), path_.c_str()) != 0)
      throw std::invalid_argument(fmt::format("--metrics {}: cannot write ({})", path_, std::strerror(errno)));
  }
  // A run that failed leaves no partial file.
  ~MetricsFile() {
    if (path_.empty() || !out_.is_open()) return;
    out_.close();
    std::remove((path_ + ".tmp").c_str());
  }

 private:
  std::string path_;
  std::ofstream out_;
};

// Raw bytes of a few vectors, for gathering over a RankGroup.
template <typename T>
void put(std::string& out, const std::vector<T>& v) {
  int64_t n = static_cast<int64_t>(v.size());
  out.append(reinterpret_cast<const char*>(&n), sizeof n);
  out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}
template <typename T>
std::vector<T> take(const std::string& in, size_t& at) {
  int64_t n = 0;
  std::memcpy(&n, in.data() + at, sizeof n);
  at += sizeof n;
  std::vector<T> v(n);
  std::memcpy(v.data(), in.data() + at, n * sizeof(T));
  at += n * sizeof(T);
  return v;
}

// Every rank's stages of a snapshot, assembled on root.
Snapshot gather_snapshot(RankGroup& g, const Snapshot& mine, int root, const std::string& what) {
  std::string bytes;
  std::vector<int32_t> held;
  for (size_t s = 0; s < mine.params.size(); ++s)
    if (!mine.params[s].empty()) held.push_back(static_cast<int32_t>(s));
  put(bytes, held);
  for (int32_t s : held) put(bytes, mine.params[s]);
  std::vector<std::string> all = g.gather(bytes, root, what);
  Snapshot out;
  out.version = mine.version;
  out.params.resize(mine.params.size());
  for (const std::string& b : all) {
    size_t at = 0;
    std::vector<int32_t> stages = take<int32_t>(b, at);
    for (int32_t s : stages) out.params[s] = take<float>(b, at);
  }
  return out;
}

}  // namespace

void check_output_file(const std::string& flag, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw std::invalid_argument(fmt::format("{} {}: is a folder; give a file name", flag, path));
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
    throw std::invalid_argument(fmt::format("{} {}: exists and is not a regular file; give a file name", flag, path));
  fs::path parent = fs::absolute(path, ec).parent_path();
  if (!fs::is_directory(parent, ec))
    throw std::invalid_argument(fmt::format("{} {}: the folder {} does not exist", flag, path, parent.string()));
  try {
    check_output_writable(path, flag);  // the probe file (schedules/files.h)
  } catch (const InputError& e) {
    throw std::invalid_argument(e.what());
  }
}

void check_outputs(const TrainOptions& opt) {
  if (!opt.save_dir.empty()) {
    try {
      check_checkpoint_target(opt.save_dir);
    } catch (const CheckpointError& e) {
      throw std::invalid_argument(e.what());
    }
  }
  check_output_file("--metrics", opt.metrics_path);
  check_output_file("--export-llmc", opt.export_llmc);
}

namespace {

// What the options mean for this run, worked out once before any work.
struct Plan {
  Schedule whole;  // the schedule of the whole run (its shape: stages, devices, M, accum)
  int M = 1, accum = 1, total_updates = 0, seg_updates = 0;
  std::vector<StagePartition> partition;
  AdamWConfig adamw;
  int reporter = 0;  // the device of the last stage: it holds the losses
};

// A pipeline segment of `updates` updates, cut from the same schedule source.
Schedule segment_schedule(const TrainOptions& opt, const Plan& plan, int updates) {
  return get_schedule_for_steps(opt.schedule, updates * plan.accum / plan.M, opt.builders);
}

Plan make_plan(const TrainOptions& opt) {
  Plan p;
  // A file runs for its own steps unless the request names a number of steps.
  const ScheduleRequest& r = opt.schedule;
  p.whole = !r.file.empty() && r.params.steps > 0 ? get_schedule_for_steps(r, r.params.steps, opt.builders)
                                                 : get_schedule(r, opt.builders);
  p.M = p.whole.spec.microbatches;
  p.accum = p.whole.accum;
  p.total_updates = p.whole.spec.total_microbatches() / p.accum;
  p.seg_updates = opt.save_every > 0 ? opt.save_every : p.total_updates;
  if (p.seg_updates < 1 || (static_cast<long>(p.seg_updates) * p.accum) % p.M != 0)
    throw std::invalid_argument(fmt::format(
        "--save-every {} must be >= 1 and cover whole steps: {} updates x {} micro-batches must "
        "be a multiple of --microbatches {}", opt.save_every, p.seg_updates, p.accum, p.M));
  // Every segment's schedule must exist (a file repeats whole): check both lengths now.
  segment_schedule(opt, p, std::min(p.seg_updates, p.total_updates));
  if (p.total_updates % p.seg_updates) segment_schedule(opt, p, p.total_updates % p.seg_updates);
  p.partition = opt.partition.empty() ? balanced_partition(opt.model, p.whole.stages()) : opt.partition;
  if (static_cast<int>(p.partition.size()) != p.whole.stages())
    throw std::invalid_argument(fmt::format("--partition has {} entries, the schedule has {} stages",
                                            p.partition.size(), p.whole.stages()));
  p.adamw = opt.adamw;
  if (p.adamw.total_steps == 0) p.adamw.total_steps = p.total_updates;
  if (opt.group && opt.group->size() != p.whole.devices())
    throw std::invalid_argument(fmt::format("{} ranks were launched but the schedule has {} devices: "
                                            "launch one rank per device (mpirun -np {})",
                                            opt.group->size(), p.whole.devices(), p.whole.devices()));
  p.reporter = p.whole.stage_device[p.whole.stages() - 1];
  return p;
}

CheckpointMeta make_meta(const TrainOptions& opt, const Plan& p) {
  CheckpointMeta meta;
  meta.model = opt.model;
  meta.partition = p.partition;
  meta.schedule = p.whole.name;
  meta.stages = p.whole.devices();
  meta.microbatches = p.M;
  meta.virtual_stages = p.whole.spec.virtual_stages;
  meta.accum = p.accum;
  meta.micro_batch = opt.micro_batch;
  meta.seq_len = opt.seq_len;
  meta.total_steps = p.total_updates;
  meta.segment_steps = p.seg_updates;
  meta.seed = opt.seed;
  meta.adamw = p.adamw;
  return meta;
}

// Loads --resume into `state` after checking that it was written by the same run; returns
// its step.
int resume(const TrainOptions& opt, const Plan& p, const CheckpointMeta& meta, Snapshot& state,
           std::ostream* log) {
  CheckpointMeta saved;
  const std::string loaded = load_checkpoint(opt.resume_dir, saved, state);
  auto differs = [&](const char* what, auto a, auto b) {
    if (a != b)
      throw std::invalid_argument(fmt::format("--resume {}: the checkpoint was written with {} "
                                              "{}, this run has {}", opt.resume_dir, what, a, b));
  };
  const GptConfig& model = opt.model;
  differs("schedule", saved.schedule, meta.schedule);
  differs("--stages", saved.stages, meta.stages);
  differs("--microbatches", saved.microbatches, meta.microbatches);
  differs("accumulation", saved.accum, meta.accum);
  differs("--layers", saved.model.layers, model.layers);
  differs("--channels", saved.model.channels, model.channels);
  differs("--heads", saved.model.heads, model.heads);
  differs("--vocab (vocabulary size)", saved.model.vocab_size, model.vocab_size);
  differs("--tied", std::string(saved.model.tied_embeddings ? "on" : "off"),
          std::string(model.tied_embeddings ? "on" : "off"));
  differs("--seed", saved.seed, opt.seed);
  differs("--batch", saved.micro_batch, opt.micro_batch);
  differs("--seq", saved.seq_len, opt.seq_len);
  if (!(saved.partition == p.partition))
    throw std::invalid_argument(fmt::format("--resume {}: the checkpoint has a different stage "
                                            "partition", opt.resume_dir));
  if (saved.step > p.total_updates)
    throw std::invalid_argument(fmt::format("--resume {}: the checkpoint is at step {}, beyond this run's {} "
                                            "steps; --steps must be at least {}", opt.resume_dir, saved.step,
                                            p.total_updates, saved.step));
  if (saved.segment_steps != p.seg_updates && log)
    *log << fmt::format("note: the checkpoint's run flushed the pipeline every {} steps, this one every "
                        "{}: the result will not be bit-identical to an uninterrupted run\n",
                        saved.segment_steps, p.seg_updates);
  if (log) *log << fmt::format("resumed from {} at step {}\n", loaded, saved.step);
  return saved.step;
}

// --init-llmc: weights from the file and fresh optimizer state, a snapshot at version 0.
Snapshot llmc_snapshot(const TrainOptions& opt, const Plan& p) {
  Snapshot state;
  const size_t S = p.partition.size();
  state.params.resize(S);
  std::vector<float*> ptrs;
  for (size_t st = 0; st < S; ++st) {
    state.params[st].assign(make_param_layout(opt.model, p.partition[st]).total, 0.0f);
    ptrs.push_back(state.params[st].data());
  }
  try {
    load_llmc_checkpoint(opt.init_llmc, opt.model, p.partition, ptrs);
  } catch (const std::exception& e) {
    throw std::invalid_argument(fmt::format("--init-llmc: {}", e.what()));
  }
  state.m = state.v = std::vector<std::vector<float>>(S);
  for (size_t st = 0; st < S; ++st) state.m[st] = state.v[st] = std::vector<float>(state.params[st].size());
  return state;
}

// What each stage recorded over the segments: drift of every micro-batch, peak memory.
struct Recorded {
  explicit Recorded(size_t stages) : memory(stages), drift_max(stages, 0), drift_sum(stages, 0), drift_n(stages, 0) {}
  void add(const RunResult& r) {
    for (size_t st = 0; st < r.v_fwd.size(); ++st)
      for (size_t m = 0; m < r.v_fwd[st].size(); ++m)
        if (r.v_fwd[st][m] >= 0 && r.v_bwd[st][m] >= 0) {
          const int d = r.v_bwd[st][m] - r.v_fwd[st][m];
          drift_max[st] = std::max(drift_max[st], d);
          drift_sum[st] += d;
          ++drift_n[st];
        }
    for (size_t s = 0; s < r.memory.size(); ++s) {
      StageMemory& m = memory[s];
      const StageMemory& n = r.memory[s];
      const int peak_slots = std::max(m.peak_slots_in_use, n.peak_slots_in_use);
      const int peak_copies = std::max(m.peak_stashed_copies, n.peak_stashed_copies);
      const int slots = std::max(m.slots, n.slots);
      const size_t allocated = std::max(m.allocated_peak, n.allocated_peak);
      const size_t device_allocated = std::max(m.device_allocated_peak, n.device_allocated_peak);
      m = n;
      m.peak_slots_in_use = peak_slots, m.peak_stashed_copies = peak_copies, m.slots = slots;
      m.allocated_peak = allocated, m.device_allocated_peak = device_allocated;
    }
  }
  // Into the report, and the closing metrics row (the stages this process ran).
  nlohmann::json finish(TrainReport& rep) const {
    rep.memory = memory;
    nlohmann::json stages = nlohmann::json::array();
    for (size_t st = 0; st < memory.size(); ++st) {
      rep.max_drift.push_back(drift_max[st]);
      rep.mean_drift.push_back(drift_n[st] ? static_cast<double>(drift_sum[st]) / drift_n[st] : 0.0);
      if (!drift_n[st]) continue;
      const StageMemory& m = memory[st];
      stages.push_back({{"stage", st}, {"max_drift", rep.max_drift[st]}, {"mean_drift", rep.mean_drift[st]},
                        {"peak_bytes", m.peak_bytes()}, {"allocated_peak_bytes", m.allocated_peak},
                        {"activation_bytes", m.peak_activation_bytes()},
                        {"weight_bytes", m.param_bytes}, {"stashed_copies", m.peak_stashed_copies}});
    }
    return stages;
  }
  std::vector<StageMemory> memory;
  std::vector<int> drift_max;
  std::vector<long> drift_sum, drift_n;
};

// The progress line: step, loss, LR, tokens/s (evaluation excluded), MFU, ETA.
struct Progress {
  std::ostream* log;
  bool live;
  int total_updates, log_every;
  double tokens_per_update, flops_per_token, peak_flops;
  void update(int k, double loss, double lr, double rate) const {
    if (!log || !(live || k % log_every == 0 || k == total_updates)) return;
    const double left = (total_updates - k) * tokens_per_update / std::max(rate, 1e-9);
    const std::string mfu =
        peak_flops > 0 ? fmt::format(" | MFU {:.1f}%", 100 * rate * flops_per_token / peak_flops) : std::string();
    *log << (live ? "\r\033[K" : "")
         << fmt::format("step {:>5}/{} | loss {:.4f} | lr {:.2e} | {:.0f} tok/s{} | ETA {}", k, total_updates,
                        loss, lr, rate, mfu, eta(left))
         << (live ? "" : "\n") << std::flush;
  }
  void line(const std::string& text) const {
    if (log) *log << (live ? "\r\033[K" : "") << text << "\n";
  }
};

// Under MPI, the actions and memory of every rank, on rank 0.
void gather_trace(RankGroup& group, TrainReport& rep, size_t stages) {
  gather_run_record(group, rep.actions, rep.memory, stages);
}

// --export-llmc: under MPI every rank's stages go to rank 0, which writes the file.
void export_llmc(const TrainOptions& opt, const Plan& p, const Snapshot& state) {
  Snapshot whole;
  if (opt.group) whole = gather_snapshot(*opt.group, state, 0, "the final weights for --export-llmc");
  if (opt.group && opt.group->rank() != 0) return;
  const Snapshot& w = opt.group ? whole : state;
  std::vector<const float*> ptrs;
  for (const auto& params : w.params) ptrs.push_back(params.data());
  try {
    save_llmc_checkpoint(opt.export_llmc, opt.model, p.partition, ptrs);
  } catch (const std::exception& e) {
    throw std::invalid_argument(fmt::format("--export-llmc {}: {}", opt.export_llmc, e.what()));
  }
  if (opt.log) *opt.log << fmt::format("wrote llm.c weights {}\n", opt.export_llmc);
}

// The state of the stages this process runs, read from the runtime after a segment (which
// ends with a flush, so every stage is at `version`): the weights, and the AdamW moments when
// `with_optimizer` (a checkpoint or the next segment needs them; evaluation and export do not).
Snapshot read_state(PipelineRuntime& rt, int version, bool with_optimizer) {
  Snapshot out;
  const int S = rt.num_stages();
  out.version = version;
  out.params.resize(S), out.m.resize(S), out.v.resize(S);
  for (int s = 0; s < S; ++s) {
    if (!rt.is_local(s)) continue;
    StageModel& st = rt.stage(s);
    const size_t n = st.param_count();
    out.params[s].resize(n);
    st.backend().to_host(out.params[s].data(), st.params(), n * sizeof(float));
    if (!with_optimizer) continue;
    out.m[s].resize(n), out.v[s].resize(n);
    st.backend().to_host(out.m[s].data(), rt.optimizer(s).m(), n * sizeof(float));
    st.backend().to_host(out.v[s].data(), rt.optimizer(s).v(), n * sizeof(float));
  }
  return out;
}

// Validation loss with the runtime's own stage models after a segment (every slot free, every
// stage at the same version), as the Evaluator computes it (stage by stage on slot 0): no
// second model and no copy of the weights. Threads on host memory only; false otherwise.
bool evaluate_in_place(PipelineRuntime& rt, const GptConfig& model, BatchSource& data, int batches, double& loss) {
  const int S = rt.num_stages();
  for (int s = 0; s < S; ++s)
    if (!rt.is_local(s) || !rt.stage(s).backend().host_memory()) return false;
  const size_t tokens_n = static_cast<size_t>(data.batch_size()) * data.seq_len();
  std::vector<float> x(tokens_n * model.channels), y(x.size());
  std::vector<int> tokens(tokens_n), targets(tokens_n);
  double sum = 0;
  for (int b = 0; b < batches; ++b) {
    data.get(b, tokens.data(), targets.data());
    for (int s = 0; s < S; ++s) {
      StageModel& st = rt.stage(s);
      const bool last = s + 1 == S;
      const float l = st.forward(0, st.params(), tokens.data(), s ? x.data() : nullptr, targets.data(),
                                 last ? nullptr : y.data());
      st.release(0);
      if (last) sum += l;
      std::swap(x, y);
    }
  }
  loss = sum / batches;
  return true;
}

}  // namespace

TrainReport train(const TrainOptions& opt) {
  if (!opt.train) throw std::invalid_argument("no training data");
  check_outputs(opt);
  const Plan plan = make_plan(opt);
  const GptConfig& model = opt.model;
  RankGroup* group = opt.group;
  if (group) group->set_timeout(opt.stall_timeout);
  TrainReport rep;
  rep.reports = !group || group->rank() == plan.reporter;
  std::ostream* log = rep.reports ? opt.log : nullptr;
  CheckpointMeta meta = make_meta(opt, plan);

  // The starting state: a checkpoint, llm.c weights, or fresh (have_state false).
  Snapshot state;
  bool have_state = false;
  int done = 0;
  // The newest checkpoint on disk of the current segment boundary: where an interrupted run
  // resumes from ("" = none yet).
  std::string boundary_dir;
  if (!opt.resume_dir.empty()) {
    done = resume(opt, plan, meta, state, log);
    have_state = true;
    boundary_dir = opt.resume_dir;
  }
  if (!opt.init_llmc.empty()) {
    if (have_state) throw std::invalid_argument("--init-llmc and --resume exclude each other");
    state = llmc_snapshot(opt, plan);
    have_state = true;
    if (log) *log << fmt::format("initialised from {}\n", opt.init_llmc);
  }
  if (!opt.export_llmc.empty() && !model.tied_embeddings)
    throw std::invalid_argument("--export-llmc: llm.c checkpoints tie the LM head to the token embedding; train "
                                "with --tied");

  MetricsFile metrics(rep.reports ? opt.metrics_path : std::string());
  // Made on first use, so a run that evaluates only at the end holds no evaluator while it trains.
  std::unique_ptr<Evaluator> evaluator;
  const double tokens_per_update = static_cast<double>(plan.accum) * opt.micro_batch * opt.seq_len;
  const Progress progress{log, opt.live, plan.total_updates, std::max(1, plan.total_updates / 25),
                          tokens_per_update, flops_per_token(model, opt.seq_len), opt.peak_flops};
  double eval_seconds = 0, train_seconds = 0;
  const int first = done;
  Recorded recorded(plan.partition.size());

  std::function<void(int, double)> report_val;
  auto evaluate = [&](const Snapshot& local, int update) {
    auto t0 = std::chrono::steady_clock::now();
    Snapshot gathered;
    if (group) gathered = gather_snapshot(*group, local, plan.reporter, fmt::format("the evaluation at step {}", update));
    if (!opt.val || !rep.reports) return;
    if (!evaluator) evaluator = std::make_unique<Evaluator>(model, plan.partition, opt.micro_batch, opt.seq_len);
    const Snapshot& snap = group ? gathered : local;
    double l = evaluator->loss(snap, *opt.val, opt.eval_batches);
    eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report_val(update, l);
  };
  report_val = [&](int update, double l) {
    rep.val_loss.emplace_back(update, l);
    metrics.write({{"step", update}, {"val_loss", l}, {"val_ppl", std::exp(l)}});
    progress.line(fmt::format("step {:>5}: val loss {:.4f} (perplexity {:.2f})", update, l, std::exp(l)));
  };

  int reached = done;  // updates applied, including those of an unfinished segment
  bool evaluated_at_end = false;
  auto interrupted_at_boundary = [&] {
    rep.interrupted = true;
    rep.interrupted_at = reached;
    rep.checkpoint = boundary_dir;
    rep.resume_step = boundary_dir.empty() ? 0 : done;
  };
  while (done < plan.total_updates) {
    if (opt.stop && opt.stop->load()) {  // e.g. arrived while a checkpoint was written
      interrupted_at_boundary();
      break;
    }
    const int seg = std::min(plan.seg_updates, plan.total_updates - done);
    Schedule sched = segment_schedule(opt, plan, seg);
    RunConfig rc;
    rc.model = model;
    rc.partition = plan.partition;
    rc.adamw = plan.adamw;
    rc.seed = opt.seed;
    rc.stall_timeout = opt.stall_timeout;
    // Snapshots (copies of every stage's weights at one version, taken while stages update at
    // different times) only where an evaluation inside the segment needs one; the state at the
    // segment's end is read once after it (read_state).
    rc.snapshot_every = opt.val && opt.eval_every > 0 ? opt.eval_every : 0;
    rc.snapshot_optimizer = false;
    rc.first_update = done;
    rc.make_backend = opt.make_backend;
    if (!opt.transport) rc.make_transport = opt.make_transport;
    if (group) rc.local_devices = {group->rank()};
    PipelineRuntime rt(sched, rc, *opt.train, opt.transport);
    if (have_state) {
      rt.restore(state);
      state = Snapshot{};  // the runtime holds it now
    }
    const double seg_eval_before = eval_seconds;
    auto on_update = [&](const UpdateEvent& ev) {
      const int k = ev.update + 1;  // updates done
      const double elapsed = train_seconds + ev.seconds - (eval_seconds - seg_eval_before);
      const double rate = (k - first) * tokens_per_update / std::max(elapsed, 1e-9);
      if (opt.hooks.after_update) opt.hooks.after_update(k);
      reached = k;
      rep.loss.push_back(ev.loss);
      if (rep.reports)
        metrics.write({{"step", k}, {"loss", ev.loss}, {"lr", ev.lr}, {"tokens_per_s", rate}, {"time_s", elapsed}});
      progress.update(k, ev.loss, ev.lr, rate);
      if (opt.val && opt.eval_every > 0 && k % opt.eval_every == 0 && ev.snapshot && k < plan.total_updates)
        evaluate(*ev.snapshot, k);
    };
    RunResult r = rt.run(on_update, opt.stop);
    recorded.add(r);
    rep.actions = std::move(r.actions);
    train_seconds += r.seconds - (eval_seconds - seg_eval_before);
    rep.schedule = sched;
    if (r.interrupted) {
      // Keep the last segment boundary (on disk already); the partial segment is dropped, so
      // a resume equals an uninterrupted run with the same segments.
      interrupted_at_boundary();
      break;
    }
    // What needs the state at the segment's end: the next segment and a checkpoint (weights
    // and AdamW moments), the final evaluation and --export-llmc (weights).
    const bool more = done + seg < plan.total_updates;
    const bool with_optimizer = more || !opt.save_dir.empty();
    // The final evaluation runs on the runtime's own models where it can (threads).
    double final_loss = 0;
    if (!more && opt.val && !group && rep.reports && evaluate_in_place(rt, model, *opt.val, opt.eval_batches, final_loss)) {
      report_val(done + seg, final_loss);
      evaluated_at_end = true;
    }
    have_state = with_optimizer || (opt.val && !evaluated_at_end) || !opt.export_llmc.empty();
    if (have_state) state = read_state(rt, done + seg, with_optimizer);
    done += seg;
    reached = done;
    if (!opt.save_dir.empty()) {
      meta.step = done;
      meta.data_position = static_cast<int64_t>(done) * plan.accum;
      if (opt.hooks.before_checkpoint) opt.hooks.before_checkpoint(done);
      save_checkpoint(opt.save_dir, meta, state, group);
      rep.checkpoint = opt.save_dir;
      boundary_dir = opt.save_dir;
    }
  }
  rep.updates_done = done;
  rep.seconds = train_seconds;
  rep.tokens_per_second = (done - first) * tokens_per_update / std::max(train_seconds, 1e-9);
  if (opt.live && log) *log << "\n";
  metrics.write({{"summary", {{"updates", done}, {"stages", recorded.finish(rep)}}}});
  if (opt.val && have_state && !rep.interrupted && !evaluated_at_end) evaluate(state, done);
  if (!opt.export_llmc.empty() && have_state && !rep.interrupted) export_llmc(opt, plan, state);
  if (group) gather_trace(*group, rep, plan.partition.size());
  metrics.close();
  return rep;
}

void gather_run_record(RankGroup& group, std::vector<ActionRecord>& actions, std::vector<StageMemory>& memory,
                       size_t stages) {
  std::string bytes;
  put(bytes, actions);
  put(bytes, memory);
  std::vector<std::string> all = group.gather(bytes, 0, "the end of the run (gathering the trace)");
  if (group.rank() != 0) return;
  actions.clear();
  std::vector<StageMemory> merged(stages);
  for (const std::string& b : all) {
    size_t at = 0;
    for (const ActionRecord& a : take<ActionRecord>(b, at)) actions.push_back(a);
    std::vector<StageMemory> m = take<StageMemory>(b, at);
    for (size_t s = 0; s < m.size(); ++s)
      if (m[s].param_bytes) merged[s] = m[s];
  }
  memory = merged;
}

}  // namespace paci
