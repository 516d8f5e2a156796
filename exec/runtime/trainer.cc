#include "exec/runtime/trainer.h"

#include <cmath>
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
    std::rename((path_ + ".tmp").c_str(), path_.c_str());
  }
  ~MetricsFile() { close(); }

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
Snapshot gather_snapshot(RankGroup& g, const Snapshot& mine, int root) {
  std::string bytes;
  std::vector<int32_t> held;
  for (size_t s = 0; s < mine.params.size(); ++s)
    if (!mine.params[s].empty()) held.push_back(static_cast<int32_t>(s));
  put(bytes, held);
  for (int32_t s : held) put(bytes, mine.params[s]);
  std::vector<std::string> all = g.gather(bytes, root);
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

TrainReport train(const TrainOptions& opt) {
  if (!opt.train) throw std::invalid_argument("no training data");
  TrainReport rep;
  const ScheduleParams& p = opt.params;
  // Generate once to check the parameters and learn the accumulation window.
  Schedule probe = make_schedule(opt.schedule, p);
  const int M = probe.spec.microbatches, accum = probe.accum;
  const int total_updates = probe.spec.total_microbatches() / accum;
  const int seg_updates = opt.save_every > 0 ? opt.save_every : total_updates;
  if (seg_updates < 1 || (static_cast<long>(seg_updates) * accum) % M != 0)
    throw std::invalid_argument(fmt::format(
        "--save-every {} must be >= 1 and cover whole steps: {} updates x {} micro-batches must "
        "be a multiple of --microbatches {}", opt.save_every, seg_updates, accum, M));
  GptConfig model = opt.model;
  std::vector<StagePartition> partition =
      opt.partition.empty() ? balanced_partition(model, probe.stages()) : opt.partition;
  if (static_cast<int>(partition.size()) != probe.stages())
    throw std::invalid_argument(fmt::format("--partition has {} entries, the schedule has {} stages",
                                            partition.size(), probe.stages()));
  AdamWConfig adamw = opt.adamw;
  if (adamw.total_steps == 0) adamw.total_steps = total_updates;
  RankGroup* group = opt.group;
  if (group && group->size() != probe.devices())
    throw std::invalid_argument(fmt::format("{} ranks were launched but the schedule has {} devices: "
                                            "launch one rank per device (mpirun -np {})",
                                            group->size(), probe.devices(), probe.devices()));
  const int reporter = probe.stage_device[probe.stages() - 1];  // holds the losses
  rep.reports = !group || group->rank() == reporter;
  std::ostream* log = rep.reports ? opt.log : nullptr;

  CheckpointMeta meta;
  meta.model = model;
  meta.partition = partition;
  meta.schedule = opt.schedule;
  meta.stages = p.stages;
  meta.microbatches = M;
  meta.virtual_stages = probe.spec.virtual_stages;
  meta.accum = accum;
  meta.micro_batch = opt.micro_batch;
  meta.seq_len = opt.seq_len;
  meta.total_steps = total_updates;
  meta.segment_steps = seg_updates;
  meta.seed = opt.seed;
  meta.adamw = adamw;

  Snapshot state;
  bool have_state = false;
  int done = 0;
  if (!opt.resume_dir.empty()) {
    CheckpointMeta saved;
    load_checkpoint(opt.resume_dir, saved, state);
    auto differs = [&](const char* what, auto a, auto b) {
      if (a != b)
        throw std::invalid_argument(fmt::format("--resume {}: the checkpoint was written with {} "
                                                "{}, this run has {}", opt.resume_dir, what, a, b));
    };
    differs("schedule", saved.schedule, meta.schedule);
    differs("--stages", saved.stages, meta.stages);
    differs("--microbatches", saved.microbatches, meta.microbatches);
    differs("accumulation", saved.accum, meta.accum);
    differs("--layers", saved.model.layers, model.layers);
    differs("--channels", saved.model.channels, model.channels);
    differs("--batch", saved.micro_batch, opt.micro_batch);
    differs("--seq", saved.seq_len, opt.seq_len);
    if (!(saved.partition == partition))
      throw std::invalid_argument(fmt::format("--resume {}: the checkpoint has a different stage "
                                              "partition", opt.resume_dir));
    done = saved.step;
    have_state = true;
    if (saved.segment_steps != seg_updates && log)
      *log << fmt::format("note: the checkpoint's run flushed the pipeline every {} steps, this one every "
                          "{}: the result will not be bit-identical to an uninterrupted run\n",
                          saved.segment_steps, seg_updates);
    if (log) *log << fmt::format("resumed from {} at step {}\n", opt.resume_dir, done);
  }

  if (!opt.init_llmc.empty()) {
    if (have_state) throw std::invalid_argument("--init-llmc and --resume exclude each other");
    // Weights from the file, fresh optimizer state: a snapshot at version 0.
    state = Snapshot{};
    state.params.resize(partition.size());
    std::vector<float*> ptrs;
    for (size_t st = 0; st < partition.size(); ++st) {
      state.params[st].assign(make_param_layout(model, partition[st]).total, 0.0f);
      ptrs.push_back(state.params[st].data());
    }
    try {
      load_llmc_checkpoint(opt.init_llmc, model, partition, ptrs);
    } catch (const std::exception& e) {
      throw std::invalid_argument(fmt::format("--init-llmc: {}", e.what()));
    }
    state.m = state.v = std::vector<std::vector<float>>(partition.size());
    for (size_t st = 0; st < partition.size(); ++st) state.m[st] = state.v[st] = std::vector<float>(state.params[st].size());
    have_state = true;
    if (log) *log << fmt::format("initialised from {}\n", opt.init_llmc);
  }
  if (!opt.export_llmc.empty() && !model.tied_embeddings)
    throw std::invalid_argument("--export-llmc: llm.c checkpoints tie the LM head to the token embedding; train "
                                "with --tied");

  MetricsFile metrics(rep.reports ? opt.metrics_path : std::string());
  std::unique_ptr<Evaluator> evaluator;
  if (opt.val && rep.reports)
    evaluator = std::make_unique<Evaluator>(model, partition, opt.micro_batch, opt.seq_len);
  const double tokens_per_update = static_cast<double>(accum) * opt.micro_batch * opt.seq_len;
  const int log_every = std::max(1, total_updates / 25);
  double eval_seconds = 0, train_seconds = 0;
  const int first = done;
  rep.memory.resize(partition.size());
  std::vector<int> drift_max(partition.size(), 0);
  std::vector<long> drift_sum(partition.size(), 0), drift_n(partition.size(), 0);

  auto evaluate = [&](const Snapshot& local, int update) {
    auto t0 = std::chrono::steady_clock::now();
    Snapshot gathered;
    if (group) gathered = gather_snapshot(*group, local, reporter);
    if (!evaluator) return;
    const Snapshot& snap = group ? gathered : local;
    double l = evaluator->loss(snap, *opt.val, opt.eval_batches);
    eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rep.val_loss.emplace_back(update, l);
    metrics.write({{"step", update}, {"val_loss", l}, {"val_ppl", std::exp(l)}});
    if (log)
      *log << (opt.live ? "\r\033[K" : "")
               << fmt::format("step {:>5}: val loss {:.4f} (perplexity {:.2f})\n", update, l, std::exp(l));
  };

  while (done < total_updates) {
    const int seg = std::min(seg_updates, total_updates - done);
    ScheduleParams sp = p;
    sp.steps = seg * accum / M;
    Schedule sched = make_schedule(opt.schedule, sp);
    RunConfig rc;
    rc.model = model;
    rc.partition = partition;
    rc.adamw = adamw;
    rc.seed = opt.seed;
    rc.stall_timeout = opt.stall_timeout;
    rc.snapshot_every = 1;
    rc.first_update = done;
    rc.make_backend = opt.make_backend;
    if (!opt.transport) rc.make_transport = opt.make_transport;
    if (group) rc.local_devices = {group->rank()};
    PipelineRuntime rt(sched, rc, *opt.train, opt.transport);
    if (have_state) rt.restore(state);
    const double seg_eval_before = eval_seconds;
    auto on_update = [&](const UpdateEvent& ev) {
      const int k = ev.update + 1;  // updates done
      const double elapsed = train_seconds + ev.seconds - (eval_seconds - seg_eval_before);
      const double rate = (k - first) * tokens_per_update / std::max(elapsed, 1e-9);
      if (group && group->rank() == opt.hang_rank && k == opt.hang_after)
        for (;;) std::this_thread::sleep_for(std::chrono::hours(1));  // stop answering
      rep.loss.push_back(ev.loss);
      if (rep.reports) metrics.write({{"step", k}, {"loss", ev.loss}, {"lr", ev.lr}, {"tokens_per_s", rate},
                     {"time_s", elapsed}});
      if (log && (opt.live || k % log_every == 0 || k == total_updates)) {
        const double left = (total_updates - k) * tokens_per_update / std::max(rate, 1e-9);
        const std::string mfu = opt.peak_flops > 0
            ? fmt::format(" | MFU {:.1f}%", 100 * rate * flops_per_token(model, opt.seq_len) / opt.peak_flops)
            : std::string();
        *log << (opt.live ? "\r\033[K" : "")
                 << fmt::format("step {:>5}/{} | loss {:.4f} | lr {:.2e} | {:.0f} tok/s{} | ETA {}", k,
                                total_updates, ev.loss, ev.lr, rate, mfu, eta(left))
                 << (opt.live ? "" : "\n") << std::flush;
      }
      if (opt.val && opt.eval_every > 0 && k % opt.eval_every == 0 && ev.snapshot && k < total_updates)
        evaluate(*ev.snapshot, k);
    };
    RunResult r = rt.run(on_update, opt.stop);
    for (size_t st = 0; st < r.v_fwd.size(); ++st)
      for (size_t m = 0; m < r.v_fwd[st].size(); ++m)
        if (r.v_fwd[st][m] >= 0 && r.v_bwd[st][m] >= 0) {
          const int d = r.v_bwd[st][m] - r.v_fwd[st][m];
          drift_max[st] = std::max(drift_max[st], d);
          drift_sum[st] += d;
          ++drift_n[st];
        }
    rep.actions = std::move(r.actions);
    for (size_t s = 0; s < r.memory.size(); ++s) {
      StageMemory& m = rep.memory[s];
      const StageMemory& n = r.memory[s];
      int peak_slots = std::max(m.peak_slots_in_use, n.peak_slots_in_use);
      int peak_copies = std::max(m.peak_stashed_copies, n.peak_stashed_copies);
      int slots = std::max(m.slots, n.slots);
      m = n;
      m.peak_slots_in_use = peak_slots, m.peak_stashed_copies = peak_copies, m.slots = slots;
    }
    train_seconds += r.seconds - (eval_seconds - seg_eval_before);
    rep.schedule = sched;
    // Ranks stop at different updates, so after an interrupt they keep the state they had
    // at the start of the segment, which they share.
    if (!(group && r.interrupted)) have_state = rt.take_latest_snapshot(state);
    if (r.interrupted) {
      rep.interrupted = true;
      if (have_state) {
        meta.step = state.version;
        meta.data_position = static_cast<int64_t>(state.version) * accum;
        std::string dir = opt.save_dir.empty() ? opt.interrupt_dir : opt.save_dir;
        save_checkpoint(dir, meta, state, group);
        rep.checkpoint = dir;
        done = state.version;
      }
      break;
    }
    done += seg;
    if (!opt.save_dir.empty()) {
      meta.step = done;
      meta.data_position = static_cast<int64_t>(done) * accum;
      save_checkpoint(opt.save_dir, meta, state, group);
      rep.checkpoint = opt.save_dir;
    }
  }
  rep.updates_done = done;
  rep.seconds = train_seconds;
  rep.tokens_per_second = (done - first) * tokens_per_update / std::max(train_seconds, 1e-9);
  if (opt.live && log) *log << "\n";
  // One closing row with what each (local) stage recorded: drift and peak memory.
  nlohmann::json stages = nlohmann::json::array();
  for (size_t st = 0; st < partition.size(); ++st) {
    rep.max_drift.push_back(drift_max[st]);
    rep.mean_drift.push_back(drift_n[st] ? static_cast<double>(drift_sum[st]) / drift_n[st] : 0.0);
    if (!drift_n[st]) continue;
    const StageMemory& m = rep.memory[st];
    stages.push_back({{"stage", st}, {"max_drift", rep.max_drift[st]}, {"mean_drift", rep.mean_drift[st]},
                      {"peak_bytes", m.peak_bytes()}, {"activation_bytes", m.peak_activation_bytes()},
                      {"weight_bytes", m.param_bytes}, {"stashed_copies", m.peak_stashed_copies}});
  }
  metrics.write({{"summary", {{"updates", done}, {"stages", stages}}}});
  if (opt.val && have_state && !rep.interrupted) evaluate(state, done);
  if (!opt.export_llmc.empty() && have_state && !rep.interrupted && !group) {
    std::vector<const float*> ptrs;
    for (const auto& p : state.params) ptrs.push_back(p.data());
    save_llmc_checkpoint(opt.export_llmc, model, partition, ptrs);
    if (log) *log << fmt::format("wrote llm.c weights {}\n", opt.export_llmc);
  }
  if (group) {
    // The trace of all ranks on rank 0: their actions and their stages' memory.
    std::string bytes;
    put(bytes, rep.actions);
    put(bytes, rep.memory);
    std::vector<std::string> all = group->gather(bytes, 0);
    if (group->rank() == 0) {
      rep.actions.clear();
      std::vector<StageMemory> merged(partition.size());
      for (const std::string& b : all) {
        size_t at = 0;
        for (const ActionRecord& a : take<ActionRecord>(b, at)) rep.actions.push_back(a);
        std::vector<StageMemory> m = take<StageMemory>(b, at);
        for (size_t s = 0; s < m.size(); ++s)
          if (m[s].param_bytes) merged[s] = m[s];
      }
      rep.memory = merged;
    }
  }
  metrics.close();
  return rep;
}

}  // namespace paci
