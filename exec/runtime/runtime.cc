#include "exec/runtime/runtime.h"

#include "exec/model/metered_backend.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <fmt/format.h>

#include "exec/model/cpu_backend.h"
#include "exec/runtime/inproc_transport.h"
#include "schedules/analysis.h"

namespace paci {
namespace {
// Thrown by a worker that finds the transport aborted: another worker failed first, and its
// error is the one the run reports.
struct PeerFailed : std::exception {
  const char* what() const noexcept override { return "another device failed first"; }
};
}  // namespace
namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

struct PipelineRuntime::Impl {
  struct Stage {
    int index = 0, device = 0;
    // Counts everything this stage allocates (declared before the model and the optimizer,
    // so it outlives them); `be` is this wrapper, `inner` the real backend.
    std::unique_ptr<MemoryMeter> meter = std::make_unique<MemoryMeter>();
    std::unique_ptr<MeteredBackend> metered;
    Backend* inner = nullptr;
    std::unique_ptr<StageModel> model;
    std::unique_ptr<AdamW> opt;
    int version = 0;                      // updates applied (absolute)
    // Older weight versions kept while a backward (stash, double buffer) or a forward
    // (double buffer) still needs them: version -> copy.
    std::map<int, float*> stash;
    std::map<int, int> refs;              // version -> in-flight micro-batches that use it
    std::unordered_map<int, int> slot_of; // mb -> slot
    std::vector<int> free_slots;
    std::unordered_map<int, int> fwd_version;  // in-flight mb -> version its forward used
    // recompute: the stage input of each in-flight mb (not on the first stage), and spares.
    std::unordered_map<int, float*> kept_input;
    std::vector<float*> spare_inputs;
    std::vector<float*> spare_copies;     // weight copies no longer needed, reused (no allocation per update)
    float *x_in = nullptr, *x_out = nullptr, *dx_out = nullptr, *dx_in = nullptr;
    float* tied_tmp = nullptr;
    Backend* be = nullptr;                // this stage's backend
    std::vector<float> staging;           // host copy of a message, for non-host backends
    std::vector<int> tokens, targets;
    StageMemory mem;
    int slots_in_use = 0;
  };

  const Schedule& schedule;
  RunConfig config;
  BatchSource& data;
  std::unique_ptr<Backend> shared_cpu;
  std::vector<std::unique_ptr<Backend>> owned_backends;
  std::vector<std::unique_ptr<MemoryMeter>> device_meters;  // [device]: all its stages together
  bool staged = false;  // messages go through host memory
  std::unique_ptr<Transport> own_transport;
  Transport* transport;
  std::vector<Stage> stages;           // every stage; only local ones have a model
  std::vector<char> local_device;
  int S = 0;
  int local_stages = 0;
  int64_t boundary = 0;  // floats in an activation / gradient message

  // Run state.
  std::mutex mu;
  std::string first_error;
  RunResult result;
  std::vector<int> update_count;  // stages that applied update k (relative index)
  std::map<int, Snapshot> snapshots;
  std::map<int, int> snapshot_parts;
  Clock::time_point t0;
  std::function<void(const UpdateEvent&)> on_update;
  std::vector<double> batch_lr;

  Impl(const Schedule& s, const RunConfig& c, BatchSource& d, Transport* t)
      : schedule(s), config(c), data(d), transport(t) {
    S = s.stages();
    const bool device_transport = !transport && static_cast<bool>(config.make_transport);
    if (config.partition.empty()) config.partition = balanced_partition(config.model, S);
    if (static_cast<int>(config.partition.size()) != S)
      throw std::invalid_argument(fmt::format("partition has {} stages, schedule has {}",
                                              config.partition.size(), S));
    Analysis an = analyze(s);
    if (recomputes_forward(s.policy))
      for (const auto& prog : s.programs)
        for (const Action& a : prog)
          if (a.kind == ActionKind::I || a.kind == ActionKind::W)
            throw std::invalid_argument(fmt::format("{}: the recompute backward needs whole backwards (B), "
                                                    "the schedule has {}", s.name, to_string(a)));
    const int B = data.batch_size(), T = data.seq_len();
    boundary = static_cast<int64_t>(B) * T * config.model.channels;
    stages.resize(S);
    for (int d = 0; d < s.devices(); ++d) device_meters.push_back(std::make_unique<MemoryMeter>());
    local_device.assign(s.devices(), config.local_devices.empty() ? 1 : 0);
    for (int d : config.local_devices) {
      if (d < 0 || d >= s.devices())
        throw std::invalid_argument(fmt::format("local device {} is not one of the schedule's {} devices",
                                                d, s.devices()));
      local_device[d] = 1;
    }
    for (int st = 0; st < S; ++st) {
      Stage& g = stages[st];
      g.index = st;
      g.device = s.stage_device[st];
      if (!local_device[g.device]) continue;
      ++local_stages;
      const bool recompute = recomputes_forward(s.policy);
      // Under recompute one slot serves each forward and each rerun before a B.
      const int slots = recompute ? 1 : std::max(1, an.stages[st].inflight_peak);
      if (config.make_backend) {
        owned_backends.push_back(config.make_backend(st));
        g.be = owned_backends.back().get();
      } else {
        if (!shared_cpu) shared_cpu = std::make_unique<CpuBackend>(CpuBackendOptions{1});
        g.be = shared_cpu.get();
      }
      g.inner = g.be;
      g.metered = std::make_unique<MeteredBackend>(*g.inner, g.meter.get(), device_meters[g.device].get());
      g.be = g.metered.get();
      if (!g.be->host_memory() && !config.transport_takes_device_buffers && !device_transport) {
        staged = true;
        g.staging.resize(boundary);
      }
      g.model = std::make_unique<StageModel>(*g.be, config.model, config.partition[st], B, T, slots,
                                             config.seed);
      g.opt = std::make_unique<AdamW>(*g.be, g.model->layout(), config.adamw);
      g.version = config.first_update;
      g.opt->set_steps_taken(config.first_update);
      for (int k = slots - 1; k >= 0; --k) g.free_slots.push_back(k);
      auto buf = [&] { return static_cast<float*>(g.be->alloc(boundary * sizeof(float))); };
      g.x_in = buf(), g.x_out = buf(), g.dx_out = buf(), g.dx_in = buf();
      g.tokens.resize(static_cast<size_t>(B) * T);
      g.targets.resize(static_cast<size_t>(B) * T);
      g.mem.param_bytes = g.model->param_bytes();
      g.mem.grad_bytes = g.model->param_bytes();
      g.mem.optimizer_bytes = 2 * g.model->param_bytes();
      g.mem.slot_bytes = g.model->activation_bytes_per_slot();
      g.mem.slots = slots;
      g.mem.workspace_bytes = g.model->scratch_bytes() + 4 * boundary * sizeof(float);
      if (recompute && st > 0) g.mem.input_bytes = boundary * sizeof(float);
    }
    if (config.model.tied_embeddings && S > 1 && s.stage_device[0] == s.stage_device[S - 1])
      check_tied_on_one_device();
    make_own_transport();
  }

  // Tied embeddings with the first and last stage on one device: that device cannot wait
  // for itself, so update k of stage 0 must come after all of the last stage's backwards of
  // global batch k and before the last stage's update k (flush schedules on a V do this).
  void check_tied_on_one_device() const {
    int opts_first = 0, opts_last = 0, last_backwards = 0;
    Action sub[2];
    for (const Action& whole : schedule.programs[schedule.stage_device[0]])
      for (int k = 0, n = sub_actions(whole, sub); k < n; ++k) {
        const Action& a = sub[k];
        if (a.stage == S - 1 && (a.kind == ActionKind::B || a.kind == ActionKind::W)) ++last_backwards;
        if (a.kind != ActionKind::OPT || (a.stage != 0 && a.stage != S - 1)) continue;
        const bool ok = a.stage == 0 ? last_backwards >= (opts_first + 1) * schedule.accum &&
                                           opts_last == opts_first
                                     : opts_first == opts_last + 1;
        if (!ok)
          throw std::invalid_argument(fmt::format(
              "schedule '{}' puts the first and the last stage on device {} and updates them "
              "apart, which tied embeddings cannot follow (the device would wait for itself): "
              "train without --tied, or with a schedule that updates both after their backwards (a flush)",
              schedule.name, schedule.stage_device[0]));
        ++(a.stage == 0 ? opts_first : opts_last);
      }
  }

  void make_own_transport() {
    if (transport) return;
    if (config.make_transport) {
      std::vector<Backend*> bes;
      for (const Stage& g : stages) bes.push_back(g.inner);
      own_transport = config.make_transport(bes);
    } else {
      own_transport = std::make_unique<InProcessTransport>();
    }
    transport = own_transport.get();
  }

  ~Impl() {
    for (Stage& g : stages) {
      for (float* p : {g.x_in, g.x_out, g.dx_out, g.dx_in, g.tied_tmp})
        if (p) g.be->free(p);
      for (auto& [v, c] : g.stash) g.be->free(c);
      for (auto& [mb, p] : g.kept_input) g.be->free(p);
      for (float* p : g.spare_inputs) g.be->free(p);
      for (float* p : g.spare_copies) g.be->free(p);
    }
  }

  double now() const { return std::chrono::duration<double>(Clock::now() - t0).count(); }

  void fail(const std::string& msg) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.empty()) first_error = msg;
    }
    transport->abort();
  }

  // Sends a stage's device buffer: directly, or through the stage's host staging buffer.
  void post(Stage& g, const MessageKey& key, const float* data, size_t n) {
    if (g.staging.empty()) {
      transport->send(key, data, n);
      return;
    }
    if (n > g.staging.size()) g.staging.resize(n);
    g.be->to_host(g.staging.data(), data, n * sizeof(float));
    transport->send(key, g.staging.data(), n);
  }

  // Receives into `out`, or throws a "stuck" error that names the waiting device and action
  // (PeerFailed when another worker failed first and aborted the transport). Waiting is idle
  // time, not the action's: the action's start moves to when the message is in (a measured
  // trace then shows waits as bubbles, as the simulator does).
  void receive(Stage& g, const MessageKey& key, float* out, size_t n, int device, int pos, const Action& a,
               ActionRecord& rec) {
    if (!g.staging.empty() && n > g.staging.size()) g.staging.resize(n);
    float* landing = g.staging.empty() ? out : g.staging.data();
    if (transport->recv(key, landing, n, config.stall_timeout)) {
      if (landing != out) g.be->from_host(out, landing, n * sizeof(float));
      rec.start = now();
      return;
    }
    if (transport->aborted()) throw PeerFailed();
    const int from_stage = sender_stage(key, S);
    throw std::runtime_error(fmt::format(
        "stuck: device {} at position {} ({}) waited {:.1f} s for the {} on device {}: that "
        "device stopped answering, or the schedule's order cannot make progress (check an "
        "imported schedule with `paci show --file`)",
        device, pos, to_string(a), config.stall_timeout.count() / 1000.0, describe(key),
        schedule.stage_device[from_stage]));
  }

  const float* weights_for(Stage& g, int version) {
    if (version == g.version) return g.model->params();
    auto it = g.stash.find(version);
    if (it == g.stash.end())
      throw std::logic_error(fmt::format("stage {}: weight version {} is not held (current {})",
                                         g.index, version, g.version));
    return it->second;
  }

  void keep_current_version(Stage& g) {
    float*& c = g.stash[g.version];
    if (!c) {
      if (g.spare_copies.empty()) {
        c = static_cast<float*>(g.be->alloc(g.model->param_bytes()));
      } else {
        c = g.spare_copies.back();
        g.spare_copies.pop_back();
      }
      g.be->copy(c, g.model->params(), g.model->param_bytes());
    }
    g.mem.peak_stashed_copies = std::max<int>(g.mem.peak_stashed_copies, g.stash.size());
  }

  // Frees copies no in-flight micro-batch uses; a double buffer also keeps the versions
  // from `keep_from` on (the previous version, which the next batch's forwards use).
  void drop_unused_copies(Stage& g, int keep_from) {
    for (auto it = g.stash.begin(); it != g.stash.end();) {
      auto r = g.refs.find(it->first);
      bool needed = (r != g.refs.end() && r->second > 0) ||
                    (schedule.policy == WeightPolicy::kDoubleBuffer && it->first >= keep_from);
      if (needed) {
        ++it;
      } else {
        g.spare_copies.push_back(it->second);
        it = g.stash.erase(it);
      }
    }
  }

  void forward(Stage& g, const Action& a, int device, int pos, ActionRecord& rec) {
    const int64_t mb_abs = static_cast<int64_t>(config.first_update) * schedule.accum + a.mb;
    const bool first = g.index == 0, last = g.index == S - 1;
    if (first || last) data.get(mb_abs, g.tokens.data(), g.targets.data());
    if (!first)
      receive(g, {MessageKind::kActivation, g.index, a.mb}, g.x_in, boundary, device, pos, a, rec);
    const int used = forward_version(schedule.policy, g.version, a.mb, schedule.accum, config.first_update);
    if (g.free_slots.empty())
      throw std::runtime_error(fmt::format("device {} at position {} ({}): all {} activation "
                                           "slots of stage {} are busy", device, pos,
                                           to_string(a), g.mem.slots, g.index));
    const int slot = g.free_slots.back();
    g.free_slots.pop_back();
    g.slot_of[a.mb] = slot;
    g.mem.peak_slots_in_use = std::max(g.mem.peak_slots_in_use, ++g.slots_in_use);
    g.fwd_version[a.mb] = used;
    ++g.refs[used];
    float loss = g.model->forward(slot, weights_for(g, used), g.tokens.data(),
                                  first ? nullptr : g.x_in, g.targets.data(), last ? nullptr : g.x_out);
    rec.version = used;
    result.v_fwd[g.index][a.mb] = used;
    if (last) result.mb_loss[a.mb] = loss;
    else post(g, {MessageKind::kActivation, g.index + 1, a.mb}, g.x_out, boundary);
    if (recomputes_forward(schedule.policy)) {  // keep the input only; B reruns the forward
      if (!first) {
        float* keep = nullptr;
        if (g.spare_inputs.empty()) {
          keep = static_cast<float*>(g.be->alloc(boundary * sizeof(float)));
        } else {
          keep = g.spare_inputs.back();
          g.spare_inputs.pop_back();
        }
        g.be->copy(keep, g.x_in, boundary * sizeof(float));
        g.kept_input[a.mb] = keep;
        g.mem.peak_inputs_kept = std::max<int>(g.mem.peak_inputs_kept, g.kept_input.size());
      }
      g.model->release(slot);
      release_slot(g, a.mb);
    }
  }

  // recompute: the forward of `mb` again, with the current weights, from the kept input (the
  // first stage re-reads its tokens, the last its targets: the data is a function of mb).
  void rerun_forward(Stage& g, int mb) {
    const bool first = g.index == 0, last = g.index == S - 1;
    const int64_t mb_abs = static_cast<int64_t>(config.first_update) * schedule.accum + mb;
    if (first || last) data.get(mb_abs, g.tokens.data(), g.targets.data());
    const int slot = g.free_slots.back();
    g.free_slots.pop_back();
    g.slot_of[mb] = slot;
    g.mem.peak_slots_in_use = std::max(g.mem.peak_slots_in_use, ++g.slots_in_use);
    float* in = nullptr;
    if (!first) {
      auto it = g.kept_input.find(mb);
      in = it->second;
      g.kept_input.erase(it);
      g.spare_inputs.push_back(in);
    }
    g.model->forward(slot, g.model->params(), g.tokens.data(), in, g.targets.data(),
                     last ? nullptr : g.x_out);
  }

  void backward_input(Stage& g, const Action& a, int device, int pos, ActionRecord& rec,
                      bool whole) {
    const bool first = g.index == 0, last = g.index == S - 1;
    if (!last) receive(g, {MessageKind::kGradient, g.index, a.mb}, g.dx_out, boundary, device, pos, a, rec);
    const int vf = g.fwd_version.at(a.mb);
    const int vb = backward_version(schedule.policy, g.version, vf);
    const float* w = weights_for(g, vb);
    // forward: the matmuls use the forward's weights, LayerNorm the current ones.
    const float* norm = schedule.policy == WeightPolicy::kForward ? g.model->params() : nullptr;
    const float scale = 1.0f / static_cast<float>(schedule.accum);
    if (recomputes_forward(schedule.policy)) rerun_forward(g, a.mb);
    const int slot = g.slot_of.at(a.mb);
    if (whole) {
      g.model->backward(slot, w, last ? nullptr : g.dx_out, first ? nullptr : g.dx_in, scale, norm);
      release_slot(g, a.mb);
    } else {
      g.model->backward_input(slot, w, last ? nullptr : g.dx_out, first ? nullptr : g.dx_in, scale, norm);
    }
    if (--g.refs[vf] == 0) g.refs.erase(vf);
    if (keeps_old_versions(schedule.policy)) drop_unused_copies(g, g.version - 1);
    g.fwd_version.erase(a.mb);
    rec.version = vb;
    result.v_bwd[g.index][a.mb] = vb;
    if (!first) post(g, {MessageKind::kGradient, g.index - 1, a.mb}, g.dx_in, boundary);
  }

  void release_slot(Stage& g, int mb) {
    auto it = g.slot_of.find(mb);
    g.free_slots.push_back(it->second);
    g.slot_of.erase(it);
    --g.slots_in_use;
  }

  void optimizer_step(Stage& g, int device, int pos, const Action& a, ActionRecord& rec) {
    if (config.model.tied_embeddings) sum_tied(g, device, pos, a, rec);
    // Versions that in-flight micro-batches still need are copied before the update; first
    // free what the next version no longer needs, so at most the policy's copies coexist.
    drop_unused_copies(g, g.version);
    if (schedule.policy == WeightPolicy::kDoubleBuffer ||
        ((schedule.policy == WeightPolicy::kStash || schedule.policy == WeightPolicy::kForward) &&
         g.refs.count(g.version)))
      keep_current_version(g);
    const double lr = g.opt->step(g.model->params(), g.model->grads());  // and zeroes grads
    ++g.version;
    rec.version = g.version;
    const int k = g.version - 1 - config.first_update;  // relative update index
    if (config.snapshot_every > 0 && g.version % config.snapshot_every == 0) take_snapshot(g);
    std::lock_guard<std::mutex> lock(mu);
    if (g.index == S - 1) {
      double sum = 0;
      for (int m = k * schedule.accum; m < (k + 1) * schedule.accum; ++m) sum += result.mb_loss[m];
      result.batch_loss[k] = sum / schedule.accum;
      batch_lr[k] = lr;
    }
    if (++update_count[k] == local_stages && on_update) {
      UpdateEvent ev;
      ev.update = g.version - 1;
      ev.loss = result.batch_loss[k];
      ev.lr = batch_lr[k];
      ev.seconds = now();
      auto it = snapshots.find(g.version);
      if (it != snapshots.end() && snapshot_parts[g.version] == local_stages) ev.snapshot = &it->second;
      on_update(ev);
    }
  }

  void take_snapshot(Stage& g) {
    const size_t n = g.model->param_count();
    const size_t nm = config.snapshot_optimizer ? n : 0;
    std::vector<float> p(n), m(nm), v(nm);
    g.be->to_host(p.data(), g.model->params(), n * sizeof(float));
    if (nm) {
      g.be->to_host(m.data(), g.opt->m(), n * sizeof(float));
      g.be->to_host(v.data(), g.opt->v(), n * sizeof(float));
    }
    std::lock_guard<std::mutex> lock(mu);
    Snapshot& s = snapshots[g.version];
    s.version = g.version;
    s.params.resize(S), s.m.resize(S), s.v.resize(S);
    s.params[g.index] = std::move(p);
    s.m[g.index] = std::move(m);
    s.v[g.index] = std::move(v);
    ++snapshot_parts[g.version];
    // Keep only the newest complete snapshot and those still filling.
    for (auto it = snapshots.begin(); it != snapshots.end();) {
      bool complete = snapshot_parts[it->first] == local_stages;
      bool newer_complete = false;
      for (auto& [ver, parts] : snapshot_parts)
        if (ver > it->first && parts == local_stages) newer_complete = true;
      if (complete && newer_complete) {
        snapshot_parts.erase(it->first);
        it = snapshots.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Tied embeddings: the first stage's wte and the last stage's copy (lm_head) must take
  // the same step, so each adds the other's gradient before it.
  void sum_tied(Stage& g, int device, int pos, const Action& a, ActionRecord& rec) {
    if (S == 1) {
      sum_tied_embedding_grads(*g.model, *g.model);
      return;
    }
    if (g.index != 0 && g.index != S - 1) return;
    if (schedule.stage_device[0] == schedule.stage_device[S - 1]) {
      // The first and the last stage on one device (a V placement): the first stage's OPT of
      // each update sums both gradients, complete by then (check_tied_on_one_device).
      if (g.index == 0) sum_tied_embedding_grads(*g.model, *stages[S - 1].model);
      return;
    }
    float* own = g.model->grad_tensor(g.index == 0 ? "wte" : "lm_head");
    const size_t n = static_cast<size_t>(config.model.vocab_size) * config.model.channels;
    if (!g.tied_tmp) {
      g.tied_tmp = static_cast<float*>(g.be->alloc(n * sizeof(float)));
      g.mem.workspace_bytes += n * sizeof(float);
    }
    const int other = g.index == 0 ? S - 1 : 0;
    post(g, {MessageKind::kTiedEmbedding, other, g.version}, own, n);
    receive(g, {MessageKind::kTiedEmbedding, g.index, g.version}, g.tied_tmp, n, device, pos, a, rec);
    g.be->accumulate(own, g.tied_tmp, n);
  }

  void worker(int device, const std::atomic<bool>* stop, std::vector<ActionRecord>& records) {
    const auto& prog = schedule.programs[device];
    int pos = 0;
    const Backend* bound = nullptr;
    try {
      for (; pos < static_cast<int>(prog.size()); ++pos) {
        if (transport->aborted()) return;
        if (stop && stop->load()) {
          transport->abort();
          return;
        }
        const Action& a = prog[pos];
        Stage& g = stages[a.stage];
        if (g.be != bound) (bound = g.be)->bind_thread();
        ActionRecord rec;
        rec.device = device;
        rec.action = a;
        rec.start = now();
        switch (a.kind) {
          case ActionKind::F: forward(g, a, device, pos, rec); break;
          case ActionKind::B: backward_input(g, a, device, pos, rec, true); break;
          case ActionKind::I: backward_input(g, a, device, pos, rec, false); break;
          case ActionKind::W:
            g.model->backward_weight(g.slot_of.at(a.mb));
            release_slot(g, a.mb);
            rec.version = g.version;
            break;
          case ActionKind::OPT: optimizer_step(g, device, pos, a, rec); break;
          case ActionKind::FB: {  // not overlapped here: its forward, then its backward
            rec.action = Fwd(a.stage, a.mb);
            forward(g, rec.action, device, pos, rec);
            rec.end = now();
            records.push_back(rec);
            rec.action = Bwd(a.stage_b, a.mb_b);
            rec.start = now();
            backward_input(stages[a.stage_b], rec.action, device, pos, rec, true);
            break;
          }
        }
        rec.end = now();
        records.push_back(rec);
      }
    } catch (const PeerFailed&) {
      return;  // the first failure is already recorded
    } catch (const std::exception& e) {
      fail(fmt::format("device {}, position {} ({}): {}", device, pos,
                       pos < static_cast<int>(prog.size()) ? to_string(prog[pos]) : "end", e.what()));
    }
  }
};

PipelineRuntime::PipelineRuntime(const Schedule& schedule, const RunConfig& config,
                                 BatchSource& data, Transport* transport)
    : impl_(std::make_unique<Impl>(schedule, config, data, transport)) {}

PipelineRuntime::~PipelineRuntime() = default;

int PipelineRuntime::num_stages() const { return impl_->S; }
bool PipelineRuntime::is_local(int s) const { return impl_->stages.at(s).model != nullptr; }
StageModel& PipelineRuntime::stage(int s) { return *impl_->stages.at(s).model; }
AdamW& PipelineRuntime::optimizer(int s) { return *impl_->stages.at(s).opt; }

void PipelineRuntime::restore(const Snapshot& snap) {
  auto& im = *impl_;
  if (static_cast<int>(snap.params.size()) != im.S)
    throw std::invalid_argument(fmt::format("snapshot has {} stages, the run has {}",
                                            snap.params.size(), im.S));
  for (int s = 0; s < im.S; ++s) {
    auto& g = im.stages[s];
    if (!g.model) continue;
    const size_t n = g.model->param_count();
    if (snap.params[s].size() != n || snap.m[s].size() != n || snap.v[s].size() != n)
      throw std::invalid_argument(fmt::format("snapshot stage {} holds {} parameters, the "
                                              "model's stage {} has {}: a different model or "
                                              "partition", s, snap.params[s].size(), s, n));
    g.be->from_host(g.model->params(), snap.params[s].data(), n * sizeof(float));
    g.be->from_host(g.opt->m(), snap.m[s].data(), n * sizeof(float));
    g.be->from_host(g.opt->v(), snap.v[s].data(), n * sizeof(float));
    g.opt->set_steps_taken(snap.version);
    g.version = snap.version;
  }
}

bool PipelineRuntime::take_latest_snapshot(Snapshot& out) {
  auto& im = *impl_;
  for (auto it = im.snapshots.rbegin(); it != im.snapshots.rend(); ++it) {
    if (im.snapshot_parts[it->first] == im.local_stages) {
      out = std::move(it->second);
      im.snapshots.clear();
      im.snapshot_parts.clear();
      return true;
    }
  }
  return false;
}

RunResult PipelineRuntime::run(const std::function<void(const UpdateEvent&)>& on_update,
                               const std::atomic<bool>* stop) {
  auto& im = *impl_;
  const int T = im.schedule.spec.total_microbatches();
  const int updates = T / im.schedule.accum;
  im.result = RunResult{};
  im.result.mb_loss.assign(T, std::nanf(""));
  im.result.batch_loss.assign(updates, std::nan(""));
  im.result.v_fwd.assign(im.S, std::vector<int>(T, -1));
  im.result.v_bwd = im.result.v_fwd;
  im.update_count.assign(updates, 0);
  im.batch_lr.assign(updates, 0);
  im.on_update = on_update;
  im.first_error.clear();
  const int D = im.schedule.devices();
  std::vector<std::vector<ActionRecord>> records(D);
  im.t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int d = 0; d < D; ++d)
    if (im.local_device[d]) threads.emplace_back([&, d] { im.worker(d, stop, records[d]); });
  for (auto& t : threads) t.join();
  im.result.seconds = im.now();
  if (!im.first_error.empty()) throw std::runtime_error(im.first_error);
  im.result.interrupted = stop && stop->load();
  for (auto& r : records) im.result.actions.insert(im.result.actions.end(), r.begin(), r.end());
  for (auto& g : im.stages) {  // zero for remote stages
    g.mem.allocated_peak = g.meter->peak();
    g.mem.device_allocated_peak = im.device_meters[g.device]->peak();
    g.mem.allocations = g.meter->allocations();
    im.result.memory.push_back(g.mem);
  }
  return std::move(im.result);
}

double peak_rss_bytes() {
  struct rusage u {};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  return 1024.0 * static_cast<double>(u.ru_maxrss);  // Linux reports KiB
}

}  // namespace paci
