#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "schedules/analysis.h"
#include "schedules/graph.h"
#include "schedules/huge_pages.h"
#include "schedules/registry.h"

namespace paci {
namespace {

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in (0, 1) from a hash.
double unit(uint64_t h) { return (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53; }

// An event: an action ends, or a device wakes up to look again (its data has landed).
struct Event {
  int32_t id;      // the action that ends, or -1: a wake-up of the device
  int32_t device;
};

// The pending events grouped by time: one bucket per distinct time, its events in the order
// they were pushed (a list through a pool of nodes). Few times are pending at once (each
// device has an action running and at most a wake-up; with uniform costs a handful of
// distinct times), so the buckets are kept sorted by time in a small vector, the earliest at
// head_, and most pushes are an append to a bucket instead of a heap's sift. Times are never
// NaN; -0 and +0 are the same time.
class EventQueue {
 public:
  bool empty() const { return head_ == buckets_.size(); }
  void push(double t, Event e) {
    int32_t k;
    if (free_ >= 0) {
      k = free_;
      free_ = nodes_[k].next;
      nodes_[k] = Node{e, -1};
    } else {
      k = static_cast<int32_t>(nodes_.size());
      nodes_.push_back(Node{e, -1});
    }
    // The bucket of time t, searched from the latest: new times mostly fall at or near the end
    // (an insertion moves the buckets after it anyway).
    size_t i = buckets_.size();
    while (i > head_ && buckets_[i - 1].t > t) --i;
    if (i > head_ && buckets_[i - 1].t == t) {
      nodes_[buckets_[i - 1].last].next = k;
      buckets_[i - 1].last = k;
    } else {
      buckets_.insert(buckets_.begin() + static_cast<std::ptrdiff_t>(i), Bucket{t, k, k});
    }
  }
  // Removes the earliest time's events and writes them to `out` in push order; returns the time.
  double pop(std::vector<Event>& out) {
    const Bucket b = buckets_[head_++];
    if (head_ == buckets_.size()) {
      buckets_.clear(), head_ = 0;
    } else if (head_ >= 64 && 2 * head_ >= buckets_.size()) {  // drop the popped ones
      buckets_.erase(buckets_.begin(), buckets_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    out.clear();
    for (int32_t k = b.first; k >= 0;) {
      out.push_back(nodes_[k].e);
      const int32_t next = nodes_[k].next;
      nodes_[k].next = free_;
      free_ = k;
      k = next;
    }
    return b.t;
  }

 private:
  struct Node {
    Event e;
    int32_t next;  // the bucket's next event, or in the free list the next free node; -1: none
  };
  struct Bucket {
    double t;
    int32_t first, last;  // its events' nodes
  };
  std::vector<Bucket> buckets_;  // by ascending time from head_ (those before it are popped)
  size_t head_ = 0;
  std::vector<Node> nodes_;
  int32_t free_ = -1;
};

// Per action, what the event loop keeps (16 bytes); its duration, consumers and trace record
// are derived from the action when it starts, and its times kept by the metrics.
struct Node {
  double ready = 0;    // latest arrival of a data dependency
  int32_t from = -1;   // producer whose data arrived last; once started, what let it start
  int8_t arrived = 0;  // data dependencies arrived
};

// The action a device is running: its record and the consumers of its output (found when it
// starts, so that their nodes are in cache when it ends).
struct Running {
  TraceAction rec;
  int ncons = 0;
  int32_t cons[3] = {-1, -1, -1};  // ascending ids (3 for an FB)
  int32_t cons_device[3] = {0, 0, 0};
};

// Per device, what the event loop touches.
struct DeviceState {
  const Action* program = nullptr;  // its program (for the dynamic policy: the actions it has)
  int size = 0;                     // actions in it
  int64_t first = 0;                // the id of its first action
  int pos = 0;                      // next program position (static) / actions run (dynamic)
  bool busy = false;
  double free_at = 0;               // when its compute was last freed
  double send_free = 0, recv_free = 0;  // when its links are free
  double mem = 0;                   // activation memory
  double wake_at = -1;              // pending wake-up
  int64_t prev = -1;                // the last action it ran
  Running run;                      // the action it runs
};

constexpr int kKinds = 6;  // ActionKind values
constexpr int kAhead = 8;  // how far ahead on a device's program to prefetch

class Engine {
 public:
  // With the schedule's index, or none to build one.
  Engine(const Schedule& s, const ActionIndex* index, const CostModel& c, const SimOptions& o, bool dynamic)
      : s_(s), c_(c), o_(o), own_index_(index ? std::nullopt : std::optional<ActionIndex>(s)),
        index_(index ? *index : *own_index_), dynamic_(dynamic) {}

  SimResult run();

 private:
  void start(int64_t id, const Action& a, int d, double t);
  void finish(int64_t id, int d, double t);
  void arrive(int64_t id, int device, int64_t from, double t);
  void dispatch(int d, double t);
  void dispatch_dynamic(int d, double t);  // the PACI runtime policy's choice
  void push(double t, int64_t id, int device) { queue_.push(t, Event{static_cast<int32_t>(id), device}); }
  void sample(double t, int d) {  // the device's activation memory changed
    const MemorySample m{t, d, dev_[d].mem};
    metrics_->add(m);
    if (o_.keep_trace) trace_.memory.push_back(m);
  }
  // The action at a program position of the schedule (for the dynamic policy: of the paci
  // schedule that supplies the actions).
  const Action& action_at(int d, int64_t id) const { return dev_[d].program[id - dev_[d].first]; }
  // Data dependencies of an action (ActionIndex::data_deps), counted.
  int num_deps(const Action& a) const {
    const int last = s_.stages() - 1;
    switch (a.kind) {
      case ActionKind::F: return a.stage > 0;
      case ActionKind::B:
      case ActionKind::I: return 1 + (a.stage < last);
      case ActionKind::W: return 1;
      case ActionKind::OPT: return 0;
      case ActionKind::FB: return (a.stage > 0) + 1 + (a.stage_b < last);
    }
    return 0;
  }
  // The actions whose data dependencies include `a`'s output, ascending by id, each with
  // its device (the inverse of ActionIndex::data_deps, from the dense index).
  void consumers(const Action& a, Running& r) const;
  void consumers_of(const Action& plain, Running& r) const;  // appends
  // An action whose data has all arrived may still wait for a transfer to land: start it
  // now, or wake its device when the data arrives.
  bool ready_now(int64_t id, const Action& a, int d, double t) {
    const Node& nd = node_[id];
    if (nd.arrived != num_deps(a)) return false;
    if (nd.ready <= t) return true;
    wake(d, nd.ready);
    return false;
  }
  void wake(int d, double at) {  // (once per time)
    if (dev_[d].wake_at != at) dev_[d].wake_at = at, push(at, -1, d);
  }
  // Compute seconds of an action: the cost model's (with stragglers and jitter; `index` is
  // the micro-batch, or for OPT the stage's update index), plus the weight copy an OPT
  // keeps and, under recompute, the forward a B runs again first.
  double duration(const Action& a, int index) const {
    if (plain_ && a.kind != ActionKind::FB)
      return plain_duration_[static_cast<size_t>(a.stage) * kKinds + static_cast<int>(a.kind)];
    return duration_of(a, index);
  }
  double duration_of(const Action& a, int index) const {
    double dur = plain_ ? c_.duration(a) : action_duration(c_, o_, a, index);
    if (a.kind == ActionKind::OPT && keeps_old_versions(s_.policy)) dur += c_.stage(a.stage).copy;
    if (a.kind == ActionKind::B && recomputes_forward(s_.policy)) {
      const Action f = Fwd(a.stage, a.mb);
      dur += plain_ ? c_.duration(f) : action_duration(c_, o_, f, index);
    }
    return dur;
  }
  // What the producer sends the consumer: an activation (from an F, or an FB's forward to
  // the next stage), else an input gradient.
  double transfer_bytes(const Action& producer, int64_t consumer) const {
    bool activation = producer.kind == ActionKind::F;
    if (producer.kind == ActionKind::FB) {
      const Action& c = index_.action(consumer);
      activation = c.stage == producer.stage + 1 && c.kind != ActionKind::B && c.kind != ActionKind::I;
    }
    return activation ? c_.stage(producer.stage).send_bytes
                      : c_.stage(producer.kind == ActionKind::FB ? producer.stage_b : producer.stage)
                            .grad_send_bytes;
  }
  void compute_dag_bound(SimResult& r);

  const Schedule& s_;
  const CostModel& c_;
  const SimOptions& o_;
  std::optional<ActionIndex> own_index_;
  const ActionIndex& index_;
  bool dynamic_;

  Trace trace_;
  std::optional<MetricsBuilder> metrics_;  // fed every record as it is made
  std::vector<Node> node_;
  std::vector<int32_t> fwd_version_;  // [stage * T + mb]: the version F used, where a B needs it
  bool plain_ = true;          // no jitter, no stragglers
  std::vector<double> plain_duration_;  // [stage * kKinds + kind] when plain_, but FB
  std::vector<DeviceState> dev_;
  std::vector<int> version_;   // per stage: OPTs finished
  std::vector<double> act_, freed_by_i_;
  std::vector<double> work_;  // recompute: the whole activations a B holds while it runs
  std::vector<double> send_time_, grad_time_;  // per stage: transfer time of its activation, its input gradient
  // Devices to dispatch at the current time, one bit each: picked in index order.
  std::vector<uint64_t> dirty_;
  void mark_dirty(int d) { dirty_[d >> 6] |= uint64_t{1} << (d & 63); }
  int busy_count_ = 0;      // devices computing now
  bool contended_ = false;  // the cost model has a contention term
  EventQueue queue_;
  size_t done_ = 0, events_ = 0;
  std::vector<std::vector<int64_t>> order_;  // realised order per device (ids)

  // Dynamic PACI policy state, per stage (= device).
  std::vector<int> next_f_, next_b_, inflight_, bdone_, opt_due_, opt_next_;
  std::vector<std::vector<int64_t>> opt_ids_;
};

void Engine::consumers(const Action& a, Running& r) const {
  r.ncons = 0;
  if (a.kind != ActionKind::FB) {
    consumers_of(a, r);
    return;
  }
  Action sub[2];
  sub_actions(a, sub);
  consumers_of(sub[0], r);
  consumers_of(sub[1], r);
}

void Engine::consumers_of(const Action& x, Running& r) const {
  // Inserted in ascending order of id (at most 3).
  auto add = [&](int64_t c, int stage) {
    int k = r.ncons++;
    for (; k > 0 && r.cons[k - 1] > c; --k) r.cons[k] = r.cons[k - 1], r.cons_device[k] = r.cons_device[k - 1];
    r.cons[k] = static_cast<int32_t>(c);
    r.cons_device[k] = s_.stage_device[stage];
  };
  switch (x.kind) {
    case ActionKind::F:  // the next stage's forward and this stage's backward
      if (x.stage < s_.stages() - 1) add(index_.fwd(x.stage + 1, x.mb), x.stage + 1);
      add(index_.grad_input(x.stage, x.mb), x.stage);
      break;
    case ActionKind::B:
    case ActionKind::I:  // the previous stage's backward, and an I's W
      if (x.stage > 0) add(index_.grad_input(x.stage - 1, x.mb), x.stage - 1);
      if (x.kind == ActionKind::I) add(index_.bwd_weight(x.stage, x.mb), x.stage);
      break;
    default:
      break;
  }
}

void Engine::start(int64_t id, const Action& a, int d, double t) {
  DeviceState& dv = dev_[d];
  Running& r = dv.run;
  TraceAction& ta = r.rec;
  ta.action = a;
  ta.device = d;
  ta.pos = dv.pos;
  ta.start = t;
  ta.version_b = 0;
  // The consumers live on other devices, far away in memory; fetch them while the action
  // runs so finish() does not stall on them.
  consumers(a, r);
  for (int k = 0; k < r.ncons; ++k) __builtin_prefetch(&node_[r.cons[k]], 1);
  // Each device walks its program and its nodes in order, one of as many such walks as
  // devices: too many for the hardware to follow, so fetch a few actions ahead.
  if (dv.pos + kAhead < dv.size) {
    __builtin_prefetch(&dv.program[dv.pos + kAhead]);
    __builtin_prefetch(&node_[id + kAhead], 1);
  }
  if (dynamic_) order_[d].push_back(id);
  Node& nd = node_[id];
  nd.from = (num_deps(a) > 0 && nd.ready >= dv.free_at) ? nd.from : static_cast<int32_t>(dv.prev);
  // The version a forward used, where a backward takes it (stash, double buffer, forward).
  auto forward_of = [&](int stage, int mb) {
    return fwd_version_.empty() ? 0 : fwd_version_[static_cast<size_t>(stage) * s_.spec.total_microbatches() + mb];
  };
  auto record_forward = [&](int stage, int mb, int version) {
    if (!fwd_version_.empty()) fwd_version_[static_cast<size_t>(stage) * s_.spec.total_microbatches() + mb] = version;
  };
  switch (a.kind) {
    case ActionKind::F:
      ta.version = forward_version(s_.policy, version_[a.stage], a.mb, s_.accum);
      record_forward(a.stage, a.mb, ta.version);
      dv.mem += act_[a.stage];
      sample(t, d);
      break;
    case ActionKind::OPT:
      ta.version = version_[a.stage];
      break;
    case ActionKind::FB:  // both halves' versions; the backward half is a whole B
      ta.version = forward_version(s_.policy, version_[a.stage], a.mb, s_.accum);
      record_forward(a.stage, a.mb, ta.version);
      ta.version_b = backward_version(s_.policy, version_[a.stage_b], forward_of(a.stage_b, a.mb_b));
      dv.mem += act_[a.stage];
      sample(t, d);
      break;
    default:
      ta.version = backward_version(s_.policy, version_[a.stage], forward_of(a.stage, a.mb));
      if (a.kind == ActionKind::B && work_[a.stage] > 0) {  // recompute: the whole activations again
        dv.mem += work_[a.stage];
        sample(t, d);
      }
  }
  // An OPT's index is its stage's update count: the stage's earlier OPTs ran before it.
  double dur = duration(a, a.kind == ActionKind::OPT ? version_[a.stage] : a.mb);
  // Contention (cost.h): slower by the devices already computing when it starts.
  if (contended_) dur *= 1 + c_.contention[static_cast<int>(a.kind)] * busy_count_;
  dv.busy = 1;
  ++busy_count_;
  ++dv.pos;
  push(t + dur, id, d);
}

void Engine::finish(int64_t id, int d, double t) {
  DeviceState& dv = dev_[d];
  Running& r = dv.run;
  TraceAction& ta = r.rec;
  const Action& a = ta.action;
  ta.end = t;
  dv.busy = 0;
  --busy_count_;
  dv.free_at = t;
  dv.prev = id;
  ++done_;
  switch (a.kind) {
    case ActionKind::B:
      dv.mem -= act_[a.stage] + work_[a.stage];
      break;
    case ActionKind::I:
      dv.mem -= act_[a.stage] * freed_by_i_[a.stage];
      break;
    case ActionKind::W:
      dv.mem -= act_[a.stage] * (1 - freed_by_i_[a.stage]);
      break;
    case ActionKind::OPT:
      ++version_[a.stage];
      break;
    case ActionKind::FB:
      dv.mem -= act_[a.stage_b];
      break;
    default:
      break;
  }
  if (a.kind == ActionKind::B || a.kind == ActionKind::I || a.kind == ActionKind::W ||
      a.kind == ActionKind::FB) {
    if (std::fabs(dv.mem) < 1e-9 * std::max(1.0, act_[a.stage])) dv.mem = 0;
    sample(t, d);
  }
  if (dynamic_ && a.kind == ActionKind::B) {
    --inflight_[a.stage];
    if (++bdone_[a.stage] % s_.accum == 0) ++opt_due_[a.stage];
  }
  metrics_->add(ta);
  if (o_.keep_trace) trace_.actions[id] = ta;
  for (int k = 0; k < r.ncons; ++k) {
    const int64_t c = r.cons[k];
    const int dst = r.cons_device[k];
    if (dst == d) {
      arrive(c, dst, id, t);
      continue;
    }
    // An FB's output depends on the consumer; any other action's is its stage's activation
    // (F) or input gradient, whose transfer time is known in advance.
    const double took = a.kind == ActionKind::FB ? c_.transfer_time(transfer_bytes(a, c))
                        : a.kind == ActionKind::F ? send_time_[a.stage]
                                                  : grad_time_[a.stage];
    double begin = std::max({t, dv.send_free, dev_[dst].recv_free});
    double end = begin + took;
    dv.send_free = dev_[dst].recv_free = end;
    if (o_.keep_trace)
      trace_.transfers.push_back({static_cast<int32_t>(id), static_cast<int32_t>(c), d, dst, begin, end, transfer_bytes(a, c)});
    // The arrival time is known now (links serve requests in order), so no event is needed:
    // the consumer's device is woken at `end` if it waits for it.
    arrive(c, dst, id, end);
  }
  mark_dirty(d);
}

void Engine::arrive(int64_t id, int d, int64_t from, double t) {
  Node& nd = node_[id];
  ++nd.arrived;
  if (t >= nd.ready) nd.ready = t, nd.from = static_cast<int32_t>(from);
  mark_dirty(d);
}

void Engine::dispatch(int d, double t) {
  const DeviceState& dv = dev_[d];
  if (dv.busy) return;
  if (dynamic_) return dispatch_dynamic(d, t);
  if (dv.pos >= dv.size) return;
  const int64_t id = dv.first + dv.pos;
  const Action& a = dv.program[dv.pos];
  if (ready_now(id, a, d, t)) start(id, a, d, t);
}

void Engine::dispatch_dynamic(int d, double t) {
  const int st = d, P = s_.stages(), T = s_.spec.total_microbatches();
  if (opt_due_[st] > 0) {
    --opt_due_[st];
    const int64_t id = opt_ids_[st][opt_next_[st]++];
    start(id, action_at(d, id), d, t);
    return;
  }
  if (next_b_[st] < T) {
    int64_t b = index_.bwd(st, next_b_[st]);
    const Action& a = action_at(d, b);
    if (ready_now(b, a, d, t)) {
      ++next_b_[st];
      start(b, a, d, t);
      return;
    }
  }
  if (next_f_[st] < T && inflight_[st] < P - st) {
    int64_t f = index_.fwd(st, next_f_[st]);
    const Action& a = action_at(d, f);
    if (ready_now(f, a, d, t)) {
      ++next_f_[st];
      ++inflight_[st];
      start(f, a, d, t);
    }
  }
}

SimResult Engine::run() {
  const int D = s_.devices(), S = s_.stages();
  const size_t n = index_.size();
  c_.check(S);
  for (const auto& g : o_.stragglers)
    if (g.stage < 0 || g.stage >= S || !(g.factor > 0) || !std::isfinite(g.factor))
      throw CostError(fmt::format("--straggler {}={}: the stage must be in 0..{} and the factor > 0",
                                  g.stage, g.factor, S - 1));
  if (!(o_.jitter >= 0) || !std::isfinite(o_.jitter))
    throw CostError(fmt::format("--jitter must be a finite number >= 0 (got {})", o_.jitter));

  trace_.schedule = s_.name;
  trace_.origin = "simulated";
  trace_.cost = c_.description;
  trace_.spec = s_.spec;
  trace_.accum = s_.accum;
  trace_.policy = s_.policy;
  trace_.stage_device = s_.stage_device;
  trace_.samples_per_microbatch = c_.samples_per_microbatch;
  trace_.tokens_per_microbatch = c_.tokens_per_microbatch;
  trace_.memory_unit = c_.memory_unit;
  trace_.static_memory.assign(D, StaticMemory{});
  std::vector<int> copies(S, 1), slots(S, 0);
  if (s_.policy != WeightPolicy::kCurrent || c_.preallocated_activations) {
    Analysis an = analyze(s_, index_);
    for (int st = 0; st < S; ++st) {
      copies[st] = an.stages[st].weight_copies;
      slots[st] = recomputes_forward(s_.policy) ? 1 : std::max(1, an.stages[st].inflight_peak);
    }
  }
  act_.resize(S);
  work_.assign(S, 0);
  send_time_.resize(S);
  grad_time_.resize(S);
  freed_by_i_.resize(S);
  for (int st = 0; st < S; ++st) {
    const StageCost& c = c_.stage(st);
    StaticMemory& m = trace_.static_memory[s_.stage_device[st]];
    m.weights += c.weight_bytes;
    m.grads += c.grad_bytes;
    m.optimizer += c.optimizer_bytes;
    m.workspace += c.workspace_bytes;
    m.stashed += (copies[st] - 1) * extra_copy_bytes(c, s_.policy);
    act_[st] = c.activation_bytes;
    send_time_[st] = c_.transfer_time(c.send_bytes);
    grad_time_[st] = c_.transfer_time(c.grad_send_bytes);
    freed_by_i_[st] = c.freed_by_i;
    if (recomputes_forward(s_.policy)) {
      // Between F and B a stage keeps only its input (the previous stage's output; the first
      // stage re-reads its tokens); its B reruns the forward and holds the whole activations.
      act_[st] = st > 0 ? c_.stage(st - 1).send_bytes : 0;
      work_[st] = c.activation_bytes;
    }
    if (c_.preallocated_activations) {  // the slots are held for the whole run
      m.workspace += slots[st] * c.activation_bytes;
      if (recomputes_forward(s_.policy)) work_[st] = 0;
      else act_[st] = 0;
    }
  }

  if (n >= static_cast<size_t>(INT32_MAX))
    throw ScheduleError(fmt::format("schedule has {} actions; the simulator handles fewer than 2^31", n));
  if (o_.keep_trace) {
    reserve_huge(trace_.actions, n);
    reserve_huge(trace_.transfers, n);
    reserve_huge(trace_.memory, 2 * n);
    trace_.actions.resize(n);
  }
  reserve_huge(node_, n);
  populate(node_, n);
  node_.assign(n, Node{});
  std::vector<size_t> sizes(D);
  for (int d = 0; d < D; ++d) sizes[d] = s_.programs[d].size();
  metrics_.emplace(trace_, sizes);
  dev_.assign(D, DeviceState{});
  for (int d = 0; d < D; ++d) {
    dev_[d].program = s_.programs[d].data();
    dev_[d].size = static_cast<int>(s_.programs[d].size());
    dev_[d].first = index_.id({d, 0});
  }
  if (keeps_old_versions(s_.policy)) fwd_version_.assign(static_cast<size_t>(S) * s_.spec.total_microbatches(), 0);
  plain_ = o_.jitter == 0 && o_.stragglers.empty();
  if (plain_) {  // durations depend on (stage, kind) only
    plain_duration_.resize(static_cast<size_t>(S) * kKinds);
    for (int st = 0; st < S; ++st)
      for (int k = 0; k < kKinds; ++k)
        if (static_cast<ActionKind>(k) != ActionKind::FB)
          plain_duration_[static_cast<size_t>(st) * kKinds + k] = duration_of({static_cast<ActionKind>(k), st, 0}, 0);
  }
  opt_ids_.assign(S, {});
  if (dynamic_)  // the policy runs each stage's OPTs in program order
    for (int d = 0; d < D; ++d)
      for (int p = 0; p < static_cast<int>(s_.programs[d].size()); ++p)
        if (s_.programs[d][p].kind == ActionKind::OPT) opt_ids_[s_.programs[d][p].stage].push_back(index_.id({d, p}));
  busy_count_ = 0;
  contended_ = c_.contended();
  version_.assign(S, 0);
  dirty_.assign((D + 63) / 64, 0);
  order_.assign(D, {});
  if (dynamic_)
    for (int d = 0; d < D; ++d) order_[d].reserve(s_.programs[d].size());
  if (dynamic_) {
    next_f_.assign(S, 0);
    next_b_.assign(S, 0);
    inflight_.assign(S, 0);
    bdone_.assign(S, 0);
    opt_due_.assign(S, 0);
    opt_next_.assign(S, 0);
  }

  double t = 0;
  for (int d = 0; d < D; ++d) dispatch(d, t);
  std::vector<Event> now;  // the events at time t
  while (!queue_.empty()) {
    t = queue_.pop(now);
    // Applying them pushes nothing: actions start in dispatch() below.
    for (const Event& e : now) {
      ++events_;
      if (e.id >= 0) {
        finish(e.id, e.device, t);
      } else {
        mark_dirty(e.device);
      }
    }
    // Devices are picked in index order, so equal-time choices are deterministic.
    for (size_t w = 0; w < dirty_.size(); ++w) {
      for (uint64_t bits = dirty_[w]; bits; bits &= bits - 1)
        dispatch(static_cast<int>(w * 64 + __builtin_ctzll(bits)), t);
      dirty_[w] = 0;
    }
  }
  if (done_ != n) {
    for (int d = 0; d < D; ++d) {
      if (dynamic_) continue;
      if (dev_[d].pos >= static_cast<int>(s_.programs[d].size())) continue;
      throw ScheduleError(fmt::format("simulation stuck at t={}: device {}, position {} ({}) waits "
                                      "for data that never arrives",
                                      t, d, dev_[d].pos, to_string(s_.programs[d][dev_[d].pos])),
                          program_excerpt(s_, {d, dev_[d].pos}));
    }
    throw ScheduleError(fmt::format("simulation stuck at t={} with {} of {} actions done", t, done_, n));
  }

  SimResult r;
  r.events = events_;
  if (dynamic_) {
    r.realised = s_;
    r.realised.name = "paci-dynamic";
    for (int d = 0; d < D; ++d) {
      auto& prog = r.realised.programs[d];
      prog.clear();
      for (int64_t id : order_[d]) prog.push_back(action_at(d, id));
    }
    trace_.schedule = r.realised.name;
  }
  // The chain that decided the makespan, walked back from the last action to end (the
  // highest id of those). The metrics keep each device's (start, end) in the order it ran:
  // the k-th action a device ran is its k-th in program order, or of the order realised.
  std::vector<int> ran_as(dynamic_ ? n : 0);
  for (int d = 0; d < D && dynamic_; ++d)
    for (size_t k = 0; k < order_[d].size(); ++k) ran_as[order_[d][k]] = static_cast<int>(k);
  auto span = [&](int64_t id, int d) {
    return metrics_->span(d, dynamic_ ? ran_as[id] : id - dev_[d].first);
  };
  int64_t last = -1;
  double last_end = 0;
  for (int d = 0; d < D; ++d)
    for (int64_t id = dev_[d].first; id < dev_[d].first + dev_[d].size; ++id)
      if (const double end = span(id, d).end; last < 0 || end >= last_end) last = id, last_end = end;
  for (int64_t x = last; x >= 0; x = node_[x].from) r.critical_path.push_back(x);
  std::reverse(r.critical_path.begin(), r.critical_path.end());
  r.critical_actions.reserve(r.critical_path.size());
  for (int64_t x : r.critical_path) {
    const int d = index_.ref(x).device;
    const auto& [start, end] = span(x, d);
    r.critical_actions.push_back({action_at(d, x), d, start, end});
  }
  if (o_.dag_bound) compute_dag_bound(r);
  r.metrics = metrics_->finish();
  r.trace = std::move(trace_);
  return r;
}

void Engine::compute_dag_bound(SimResult& r) {
  const size_t n = index_.size();
  const int D = s_.devices();
  std::vector<int64_t> next(n, -1);
  std::vector<int> indeg(n, 0);
  std::vector<double> dur(n, 0);
  std::vector<int> device(n, 0);
  std::vector<int> updates(s_.stages(), 0);
  for (int d = 0; d < D; ++d)
    for (int p = 0; p < static_cast<int>(s_.programs[d].size()); ++p) {
      const Action& a = s_.programs[d][p];
      const int64_t id = index_.id({d, p});
      dur[id] = duration(a, a.kind == ActionKind::OPT ? updates[a.stage]++ : a.mb);
      indeg[id] = num_deps(a);
      device[id] = d;
    }
  if (!dynamic_) {
    order_.assign(D, {});
    for (int d = 0; d < D; ++d)
      for (size_t p = 0; p < s_.programs[d].size(); ++p) order_[d].push_back(index_.id({d, static_cast<int>(p)}));
  }
  for (const auto& ord : order_)
    for (size_t k = 0; k + 1 < ord.size(); ++k) next[ord[k]] = ord[k + 1], ++indeg[ord[k + 1]];
  std::vector<double> es(n, 0);
  std::vector<int64_t> queue;
  queue.reserve(n);
  for (size_t id = 0; id < n; ++id)
    if (indeg[id] == 0) queue.push_back(static_cast<int64_t>(id));
  double bound = 0;
  Running cons;
  for (size_t h = 0; h < queue.size(); ++h) {
    int64_t u = queue[h];
    double fin = es[u] + dur[u];
    bound = std::max(bound, fin);
    const Action& a = action_at(device[u], u);
    auto relax = [&](int64_t v, double at) {
      es[v] = std::max(es[v], at);
      if (--indeg[v] == 0) queue.push_back(v);
    };
    consumers(a, cons);
    for (int k = 0; k < cons.ncons; ++k) {
      const int64_t v = cons.cons[k];
      relax(v, fin + (device[v] == device[u] ? 0 : c_.transfer_time(transfer_bytes(a, v))));
    }
    if (next[u] >= 0) relax(next[u], fin);
  }
  r.dag_bound = bound;
}

}  // namespace

double action_duration(const CostModel& c, const SimOptions& o, const Action& a, int index) {
  double d = c.duration(a);
  for (const auto& g : o.stragglers)
    if (g.stage == a.stage) d *= g.factor;
  if (o.jitter > 0 && d > 0) {
    uint64_t key = mix(o.seed ^ mix((static_cast<uint64_t>(a.kind) << 56) ^
                                    (static_cast<uint64_t>(a.stage) << 32) ^
                                    static_cast<uint32_t>(index)));
    double u1 = unit(mix(key)), u2 = unit(mix(key + 1));
    double z = std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
    d *= std::exp(o.jitter * z - o.jitter * o.jitter / 2);
  }
  return d;
}

SimResult simulate(const Schedule& s, const CostModel& c, const SimOptions& o) {
  Engine e(s, nullptr, c, o, false);
  return e.run();
}

SimResult simulate(const Schedule& s, const ActionIndex& index, const CostModel& c, const SimOptions& o) {
  Engine e(s, &index, c, o, false);
  return e.run();
}

SimResult simulate_paci_policy(int P, int M, int N, int a, const CostModel& c, const SimOptions& o) {
  ScheduleParams p;
  p.stages = P;
  p.microbatches = M;
  p.steps = N;
  p.accum = a;
  // The static paci schedule supplies the set of actions (and their ids); the policy picks
  // their order.
  Schedule base = make_schedule("paci", p);
  Engine e(base, nullptr, c, o, true);
  return e.run();
}

}  // namespace paci
