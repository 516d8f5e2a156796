#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <queue>

#ifdef __linux__
#include <sys/mman.h>
#endif

#include <fmt/format.h>

#include "schedules/analysis.h"
#include "schedules/graph.h"
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

// 24 bytes: the heap stays small (running actions + transfers in flight) and cache-resident.
struct Event {
  double t;
  uint64_t seq;
  int32_t id;    // the action that ends (kEnd), or the device to wake up (kWake)
  int32_t kind;
};
constexpr int32_t kEnd = 0, kWake = 1;

// Everything the event loop touches per action (40 bytes, within a cache line or two).
struct Node {
  double dur = 0;
  double ready = 0;          // latest arrival of a data dependency
  int32_t cons[3] = {-1, -1, -1};  // consumers of this action's output (3 for an FB)
  int32_t last_dep = -1;     // producer whose data arrived last
  int32_t cause = -1;        // what let this action start (critical path)
  int32_t device = 0;
  int8_t pending = 0;        // data dependencies not yet arrived
  int8_t ndeps = 0;
};

struct Later {
  bool operator()(const Event& a, const Event& b) const {
    return a.t > b.t || (a.t == b.t && a.seq > b.seq);
  }
};

// Large run buffers (hundreds of MB at a million actions) are faulted in page by page;
// asking for transparent huge pages before they are touched removes most of that cost
// (a quarter of the run time otherwise). Only a hint: ignored where unsupported.
template <class T>
void reserve_huge(std::vector<T>& v, size_t n) {
  v.reserve(n);
#ifdef __linux__
  const size_t bytes = n * sizeof(T);
  if (bytes < (8u << 20)) return;
  const uintptr_t page = 4096, lo = (reinterpret_cast<uintptr_t>(v.data()) + page - 1) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(v.data()) + bytes) & ~(page - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#endif
}

class Engine {
 public:
  Engine(const Schedule& s, const CostModel& c, const SimOptions& o, bool dynamic)
      : s_(s), c_(c), o_(o), index_(s), dynamic_(dynamic) {}

  SimResult run();

 private:
  void start(int64_t id, int d, double t);
  void finish(int64_t id, double t);
  void arrive(int64_t id, int64_t from, double t);
  void dispatch(int d, double t);
  void push(double t, int64_t id, int32_t kind) {
    heap_.push(Event{t, seq_++, static_cast<int32_t>(id), kind});
  }
  // An action whose data is all accounted for (pending == 0) may still wait for a transfer
  // to land: start it now, or wake its device when the data arrives.
  bool ready_now(int64_t id, int d, double t) {
    const Node& nd = node_[id];
    if (nd.pending != 0) return false;
    if (nd.ready <= t) return true;
    if (wake_at_[d] != nd.ready) wake_at_[d] = nd.ready, push(nd.ready, d, kWake);
    return false;
  }
  // What the producer sends the consumer: an activation (from an F, or an FB's forward to
  // the next stage), else an input gradient.
  double transfer_bytes(const Action& producer, const Action& consumer) const {
    const bool activation = producer.kind == ActionKind::F ||
                            (producer.kind == ActionKind::FB && consumer.stage == producer.stage + 1 &&
                             consumer.kind != ActionKind::B && consumer.kind != ActionKind::I);
    return activation ? c_.stage(producer.stage).send_bytes
                      : c_.stage(producer.kind == ActionKind::FB ? producer.stage_b : producer.stage)
                            .grad_send_bytes;
  }
  void compute_dag_bound(SimResult& r);

  const Schedule& s_;
  const CostModel& c_;
  const SimOptions& o_;
  ActionIndex index_;
  bool dynamic_;

  Trace trace_;
  std::vector<Node> node_;
  std::vector<char> busy_;
  std::vector<double> free_at_, send_free_, recv_free_, dyn_mem_;
  std::vector<int64_t> prev_;  // last action each device ran
  std::vector<double> wake_at_;  // pending wake-up per device
  std::vector<int> pos_;       // next program position (static) / actions run (dynamic)
  std::vector<int> version_;   // per stage: OPTs finished
  std::vector<double> act_, freed_by_i_;
  std::vector<double> work_;  // recompute: the whole activations a B holds while it runs
  std::vector<int> dirty_;
  std::vector<char> is_dirty_;
  int busy_count_ = 0;      // devices computing now
  bool contended_ = false;  // the cost model has a contention term
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  uint64_t seq_ = 0;
  size_t done_ = 0, events_ = 0;
  std::vector<std::vector<int64_t>> order_;  // realised order per device (ids)

  // Dynamic PACI policy state, per stage (= device).
  std::vector<int> next_f_, next_b_, inflight_, bdone_, opt_due_, opt_next_;
  std::vector<std::vector<int64_t>> opt_ids_;
};

void Engine::start(int64_t id, int d, double t) {
  TraceAction& ta = trace_.actions[id];
  const Action& a = ta.action;
  ta.start = t;
  Node& nd = node_[id];
  // The consumers live on other devices, far away in memory; fetch them while the action
  // runs so finish() does not stall on them.
  for (int k = 0; k < 3; ++k)
    if (nd.cons[k] >= 0) {
      __builtin_prefetch(&node_[nd.cons[k]]);
      __builtin_prefetch(&trace_.actions[nd.cons[k]]);
    }
  ta.pos = pos_[d];
  if (dynamic_) order_[d].push_back(id);
  nd.cause = (nd.ndeps > 0 && nd.ready >= free_at_[d]) ? nd.last_dep : static_cast<int32_t>(prev_[d]);
  switch (a.kind) {
    case ActionKind::F:
      ta.version = forward_version(s_.policy, version_[a.stage], a.mb, s_.accum);
      dyn_mem_[d] += act_[a.stage];
      trace_.memory.push_back({t, d, dyn_mem_[d]});
      break;
    case ActionKind::OPT:
      ta.version = version_[a.stage];
      break;
    case ActionKind::FB:  // both halves' versions; the backward half is a whole B
      ta.version = forward_version(s_.policy, version_[a.stage], a.mb, s_.accum);
      ta.version_b = backward_version(s_.policy, version_[a.stage_b],
                                      trace_.actions[index_.fwd(a.stage_b, a.mb_b)].version);
      dyn_mem_[d] += act_[a.stage];
      trace_.memory.push_back({t, d, dyn_mem_[d]});
      break;
    default:
      ta.version = backward_version(s_.policy, version_[a.stage],
                                    trace_.actions[index_.fwd(a.stage, a.mb)].version);
      if (a.kind == ActionKind::B && work_[a.stage] > 0) {  // recompute: the whole activations again
        dyn_mem_[d] += work_[a.stage];
        trace_.memory.push_back({t, d, dyn_mem_[d]});
      }
  }
  // Contention (cost.h): slower by the devices already computing when it starts.
  double dur = nd.dur;
  if (contended_) dur *= 1 + c_.contention[static_cast<int>(a.kind)] * busy_count_;
  busy_[d] = 1;
  ++busy_count_;
  ++pos_[d];
  push(t + dur, id, kEnd);
}

void Engine::finish(int64_t id, double t) {
  TraceAction& ta = trace_.actions[id];
  const Action& a = ta.action;
  const int d = ta.device;
  ta.end = t;
  busy_[d] = 0;
  --busy_count_;
  free_at_[d] = t;
  prev_[d] = id;
  ++done_;
  switch (a.kind) {
    case ActionKind::B:
      dyn_mem_[d] -= act_[a.stage] + work_[a.stage];
      break;
    case ActionKind::I:
      dyn_mem_[d] -= act_[a.stage] * freed_by_i_[a.stage];
      break;
    case ActionKind::W:
      dyn_mem_[d] -= act_[a.stage] * (1 - freed_by_i_[a.stage]);
      break;
    case ActionKind::OPT:
      ++version_[a.stage];
      break;
    case ActionKind::FB:
      dyn_mem_[d] -= act_[a.stage_b];
      break;
    default:
      break;
  }
  if (a.kind == ActionKind::B || a.kind == ActionKind::I || a.kind == ActionKind::W ||
      a.kind == ActionKind::FB) {
    if (std::fabs(dyn_mem_[d]) < 1e-9 * std::max(1.0, act_[a.stage])) dyn_mem_[d] = 0;
    trace_.memory.push_back({t, d, dyn_mem_[d]});
  }
  if (dynamic_ && a.kind == ActionKind::B) {
    --inflight_[a.stage];
    if (++bdone_[a.stage] % s_.accum == 0) ++opt_due_[a.stage];
  }
  const Node& nd = node_[id];
  for (int k = 0; k < 3; ++k) {
    int64_t c = nd.cons[k];
    if (c < 0) continue;
    int dst = node_[c].device;
    if (dst == d) {
      arrive(c, id, t);
      continue;
    }
    double bytes = transfer_bytes(a, trace_.actions[c].action);
    double begin = std::max({t, send_free_[d], recv_free_[dst]});
    double end = begin + c_.transfer_time(bytes);
    send_free_[d] = recv_free_[dst] = end;
    trace_.transfers.push_back({a, trace_.actions[c].action, d, dst, begin, end, bytes});
    // The arrival time is known now (links serve requests in order), so no event is needed:
    // the consumer's device is woken at `end` if it waits for it.
    arrive(c, id, end);
  }
  if (!is_dirty_[d]) is_dirty_[d] = 1, dirty_.push_back(d);
}

void Engine::arrive(int64_t id, int64_t from, double t) {
  Node& nd = node_[id];
  --nd.pending;
  if (t >= nd.ready) nd.ready = t, nd.last_dep = static_cast<int32_t>(from);
  int d = nd.device;
  if (!is_dirty_[d]) is_dirty_[d] = 1, dirty_.push_back(d);
}

void Engine::dispatch(int d, double t) {
  if (busy_[d]) return;
  if (!dynamic_) {
    if (pos_[d] >= static_cast<int>(s_.programs[d].size())) return;
    int64_t id = index_.id({d, pos_[d]});
    if (ready_now(id, d, t)) start(id, d, t);
    return;
  }
  const int st = d, P = s_.stages(), T = s_.spec.total_microbatches();
  if (opt_due_[st] > 0) {
    --opt_due_[st];
    start(opt_ids_[st][opt_next_[st]++], d, t);
    return;
  }
  if (next_b_[st] < T) {
    int64_t b = index_.bwd(st, next_b_[st]);
    if (ready_now(b, d, t)) {
      ++next_b_[st];
      start(b, d, t);
      return;
    }
  }
  if (next_f_[st] < T && inflight_[st] < P - st) {
    int64_t f = index_.fwd(st, next_f_[st]);
    if (ready_now(f, d, t)) {
      ++next_f_[st];
      ++inflight_[st];
      start(f, d, t);
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
  reserve_huge(trace_.actions, n);
  reserve_huge(trace_.transfers, n);
  reserve_huge(trace_.memory, 2 * n);
  reserve_huge(node_, n);
  trace_.actions.resize(n);
  node_.assign(n, Node{});
  opt_ids_.assign(S, {});
  std::vector<int64_t> deps;
  const bool plain = o_.jitter == 0 && o_.stragglers.empty();
  for (int d = 0; d < D; ++d) {
    const auto& prog = s_.programs[d];
    for (int p = 0; p < static_cast<int>(prog.size()); ++p) {
      int64_t id = index_.id({d, p});
      const Action& a = prog[p];
      TraceAction& ta = trace_.actions[id];
      ta.action = a;
      ta.device = d;
      ta.pos = p;
      Node& nd = node_[id];
      nd.device = d;
      int idx = a.mb;
      if (a.kind == ActionKind::OPT) {
        idx = static_cast<int>(opt_ids_[a.stage].size());
        opt_ids_[a.stage].push_back(id);
      }
      nd.dur = plain ? c_.duration(a) : action_duration(c_, o_, a, idx);
      if (a.kind == ActionKind::OPT && keeps_old_versions(s_.policy)) nd.dur += c_.stage(a.stage).copy;
      if (a.kind == ActionKind::B && recomputes_forward(s_.policy)) {  // the forward again, first
        const Action f = Fwd(a.stage, a.mb);
        nd.dur += plain ? c_.duration(f) : action_duration(c_, o_, f, idx);
      }
      index_.data_deps(id, deps);
      nd.pending = nd.ndeps = static_cast<int8_t>(deps.size());
      for (int64_t x : deps) {
        int32_t* slot = node_[x].cons;
        slot[slot[0] < 0 ? 0 : slot[1] < 0 ? 1 : 2] = static_cast<int32_t>(id);
      }
    }
  }
  busy_.assign(D, 0);
  busy_count_ = 0;
  contended_ = c_.contended();
  free_at_.assign(D, 0);
  send_free_.assign(D, 0);
  recv_free_.assign(D, 0);
  dyn_mem_.assign(D, 0);
  prev_.assign(D, -1);
  wake_at_.assign(D, -1);
  pos_.assign(D, 0);
  version_.assign(S, 0);
  is_dirty_.assign(D, 0);
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
  while (!heap_.empty()) {
    t = heap_.top().t;
    while (!heap_.empty() && heap_.top().t == t) {
      Event e = heap_.top();
      heap_.pop();
      ++events_;
      if (e.kind == kEnd) {
        finish(e.id, e.t);
      } else if (!is_dirty_[e.id]) {
        is_dirty_[e.id] = 1;
        dirty_.push_back(e.id);
      }
    }
    // Devices are picked in index order, so equal-time choices are deterministic.
    std::sort(dirty_.begin(), dirty_.end());
    for (int d : dirty_) {
      is_dirty_[d] = 0;
      dispatch(d, t);
    }
    dirty_.clear();
  }
  if (done_ != n) {
    for (int d = 0; d < D; ++d) {
      if (dynamic_) continue;
      if (pos_[d] >= static_cast<int>(s_.programs[d].size())) continue;
      throw ScheduleError(fmt::format("simulation stuck at t={}: device {}, position {} ({}) waits "
                                      "for data that never arrives",
                                      t, d, pos_[d], to_string(s_.programs[d][pos_[d]])),
                          program_excerpt(s_, {d, pos_[d]}));
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
      for (int64_t id : order_[d]) prog.push_back(trace_.actions[id].action);
    }
    trace_.schedule = r.realised.name;
  }
  // The chain that decided the makespan, walked back from the last action to end.
  int64_t last = -1;
  for (size_t id = 0; id < n; ++id)
    if (last < 0 || trace_.actions[id].end >= trace_.actions[last].end) last = static_cast<int64_t>(id);
  for (int64_t x = last; x >= 0; x = node_[x].cause) r.critical_path.push_back(x);
  std::reverse(r.critical_path.begin(), r.critical_path.end());
  if (o_.dag_bound) compute_dag_bound(r);
  r.trace = std::move(trace_);
  return r;
}

void Engine::compute_dag_bound(SimResult& r) {
  const size_t n = index_.size();
  std::vector<int64_t> next(n, -1);
  std::vector<int> indeg(n, 0);
  if (!dynamic_) {
    order_.assign(s_.devices(), {});
    for (int d = 0; d < s_.devices(); ++d)
      for (size_t p = 0; p < s_.programs[d].size(); ++p) order_[d].push_back(index_.id({d, static_cast<int>(p)}));
  }
  for (const auto& ord : order_)
    for (size_t k = 0; k + 1 < ord.size(); ++k) next[ord[k]] = ord[k + 1], ++indeg[ord[k + 1]];
  for (size_t id = 0; id < n; ++id) indeg[id] += node_[id].ndeps;
  std::vector<double> es(n, 0);
  std::vector<int64_t> queue;
  queue.reserve(n);
  for (size_t id = 0; id < n; ++id)
    if (indeg[id] == 0) queue.push_back(static_cast<int64_t>(id));
  double bound = 0;
  for (size_t h = 0; h < queue.size(); ++h) {
    int64_t u = queue[h];
    double fin = es[u] + node_[u].dur;
    bound = std::max(bound, fin);
    const Action& a = trace_.actions[u].action;
    auto relax = [&](int64_t v, double at) {
      es[v] = std::max(es[v], at);
      if (--indeg[v] == 0) queue.push_back(v);
    };
    for (int k = 0; k < 3; ++k) {
      int64_t v = node_[u].cons[k];
      if (v < 0) continue;
      relax(v, fin + (node_[v].device == node_[u].device
                          ? 0
                          : c_.transfer_time(transfer_bytes(a, trace_.actions[v].action))));
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
  Engine e(s, c, o, false);
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
  Engine e(base, c, o, true);
  return e.run();
}

}  // namespace paci
