#include "sim/plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "schedules/analysis.h"
#include "schedules/graph.h"
#include "schedules/registry.h"
#include "schedules/source.h"
#include "schedules/trace/metrics.h"
#include "schedules/validate.h"
#include "sim/builders.h"
#include "sim/simulator.h"

namespace paci {

std::vector<std::string> default_plan_schedules() {
  std::vector<std::string> out;
  for (const ScheduleInfo& i : schedule_catalog())
    if (i.name != "pipedream" && i.name != "pipedream-2bw") out.push_back(i.name);
  return out;
}

const char* plan_status_name(PlanStatus s) {
  switch (s) {
    case PlanStatus::kFront: return "front";
    case PlanStatus::kSimulated: return "simulated";
    case PlanStatus::kOverMemory: return "over-memory";
    case PlanStatus::kDominated: return "dominated";
    case PlanStatus::kInvalid: return "invalid";
  }
  return "?";
}

std::string PlanCandidate::label() const {
  std::string s = fmt::format("{} P={}", schedule, P);
  if (v > 1) s += fmt::format(" v={}", v);
  s += fmt::format(" b={} M={}", micro_batch, microbatches);
  if (backward != WeightPolicy::kCurrent) s += fmt::format(" {}", policy_name(backward));
  return s;
}

double program_order_peak(const Schedule& s, const Analysis& an, const CostModel& c) {
  const int S = s.stages();
  std::vector<double> act(S), work(S, 0), fi(S);
  std::vector<double> static_mem(s.devices(), 0);
  for (int st = 0; st < S; ++st) {
    const StageCost& sc = c.stage(st);
    const int copies = s.policy == WeightPolicy::kCurrent ? 1 : an.stages[st].weight_copies;
    static_mem[s.stage_device[st]] +=
        sc.weight_bytes + sc.grad_bytes + sc.optimizer_bytes + sc.workspace_bytes +
        (copies - 1) * extra_copy_bytes(sc, s.policy);
    act[st] = sc.activation_bytes;
    fi[st] = sc.freed_by_i;
    if (recomputes_forward(s.policy)) {
      act[st] = st > 0 ? c.stage(st - 1).send_bytes : 0;
      work[st] = sc.activation_bytes;
    }
  }
  double peak = 0;
  for (int d = 0; d < s.devices(); ++d) {
    double mem = 0, top = 0;
    for (const Action& a : s.programs[d]) {
      switch (a.kind) {
        case ActionKind::F: mem += act[a.stage]; break;
        case ActionKind::B:
          top = std::max(top, mem + work[a.stage]);  // while it runs
          mem -= act[a.stage];
          break;
        case ActionKind::I: mem -= act[a.stage] * fi[a.stage]; break;
        case ActionKind::W: mem -= act[a.stage] * (1 - fi[a.stage]); break;
        case ActionKind::OPT: break;
        default: return -1;
      }
      top = std::max(top, mem);
    }
    peak = std::max(peak, static_mem[d] + top);
  }
  return peak;
}

namespace {

// Schedules whose micro-batches cross updates between forward and backward (where the
// `forward` semantics differs from `current`).
bool synchronous(const std::string& name) {
  return name != "paci" && name != "paci-v" && name != "pipedream-2bw" && name != "pipedream";
}
// Schedules with a split backward (I, W): no recompute.
bool split_backward(const std::string& name) {
  for (const char* n : {"zb-h1", "zb-1p", "zb-2p", "zb-v", "v-half", "v-min", "interleaved-zb"})
    if (name == n) return true;
  return false;
}


// Lower bound of the steady step time (see plan.h): least over devices of a x (B, or W) +
// OPT of the device's first stage. Where that stage has no drift and no gradient delay (a
// synchronous schedule), every forward of global batch j also runs between its updates j-1
// and j (it uses version j, and its gradient enters update j), so the forwards count too.
double step_lower_bound(const Schedule& s, const Analysis& an, const CostModel& c) {
  const int S = s.stages();
  std::vector<char> split(S, 0);
  for (const auto& prog : s.programs)
    for (const Action& a : prog) {
      if (a.kind == ActionKind::W) split[a.stage] = 1;
      if (a.kind != ActionKind::F && a.kind != ActionKind::B && a.kind != ActionKind::I &&
          a.kind != ActionKind::W && a.kind != ActionKind::OPT)
        return 0;
    }
  double bound = std::numeric_limits<double>::infinity();
  for (int d = 0; d < s.devices(); ++d) {
    int first = S;
    for (int st = 0; st < S; ++st)
      if (s.stage_device[st] == d) first = std::min(first, st);
    if (first == S) continue;
    const StageCost& sc = c.stage(first);
    double back = split[first] ? sc.w : sc.b;
    if (!split[first] && recomputes_forward(s.policy)) back += sc.f;
    const StageFacts& facts = an.stages[first];
    if (facts.max_drift == 0 && facts.max_delay == 0) back += sc.f + (split[first] ? sc.i : 0);
    bound = std::min(bound, s.accum * back + sc.opt);
  }
  return std::isfinite(bound) ? bound : 0;
}

struct Config {
  std::string schedule;
  int P = 0, v = 1, b = 0, M = 0;
  WeightPolicy backward = WeightPolicy::kCurrent;
};

// Steps simulated: enough for the metrics' steady window (more than 2 ceil((S-1)/a) updates).
int steps_for(const PlanSpace& sp, int stages, int a) {
  const int k = (stages - 1 + a - 1) / a;
  return std::max(sp.min_steps, 2 * k + 2);
}

// In-flight micro-batches per stage for the partitioner: the schedule's own, or 1F1B's (x2
// for zb-2p) for the schedules built from the cost model.
std::vector<double> inflight_of(const Analysis& an) {
  std::vector<double> out;
  for (const StageFacts& f : an.stages) out.push_back(std::max(1, f.inflight_peak));
  return out;
}

struct Built {
  Schedule schedule;
  Analysis analysis;
  PlanCost cost;
};

// The schedule, its analysis and its cost model. Throws (ParamError, ScheduleError,
// CostError, std::invalid_argument) for what cannot be built.
Built build(const PlanSpace& sp, const Config& c, int steps, const PlanCostFn& cost_fn) {
  int S = c.P * c.v;
  ScheduleParams p;
  p.stages = c.P;
  p.microbatches = c.M;
  p.steps = steps;
  const ScheduleInfo* info = find_schedule(c.schedule);
  if (info && info->uses_virtual) p.virtual_stages = c.v;
  if (info && info->uses_accum) p.accum = c.M;
  // The partition: under the memory limit when some split fits it, else the unlimited one
  // (whose exact memory then decides).
  auto cost_for = [&](const std::vector<double>& inflight) {
    PartitionLimits lim;
    lim.inflight = inflight;
    lim.memory_limit = sp.memory_limit * c.P / S;  // a device's share per stage
    if (sp.memory_limit > 0) {
      try {
        return cost_fn(S, c.b, lim);
      } catch (const std::invalid_argument&) {
      }
    }
    lim.memory_limit = 0;
    return cost_fn(S, c.b, lim);
  };
  Built out;
  const bool zb_auto = c.schedule == "zb-1p" || c.schedule == "zb-2p";
  if (zb_auto) {
    std::vector<double> inflight;
    for (int s = 0; s < S; ++s) inflight.push_back((c.schedule == "zb-2p" ? 2.0 : 1.0) * std::min(c.P - s, c.M));
    out.cost = cost_for(inflight);
    const CostModel cm = out.cost.cost;
    ScheduleBuilders builders = simulator_builders([cm](int) { return cm; }, sp.memory_limit);
    ScheduleRequest r;
    r.name = c.schedule;
    r.params = p;
    out.schedule = get_schedule(r, builders);
  } else {
    out.schedule = make_schedule(c.schedule, p);
  }
  if (c.backward != WeightPolicy::kCurrent) out.schedule = with_backward(out.schedule, c.backward);
  out.analysis = validate(out.schedule);
  S = out.schedule.stages();  // V placements hold two stages per device
  if (!zb_auto) out.cost = cost_for(inflight_of(out.analysis));
  return out;
}

std::vector<int> divisors(int n) {
  std::vector<int> out;
  for (int d = 1; d <= n; ++d)
    if (n % d == 0) out.push_back(d);
  return out;
}

// a strictly dominates b: no slower and no larger, and better in one.
bool dominates(double ta, double ma, double tb, double mb) {
  return ta <= tb && ma <= mb && (ta < tb || ma < mb);
}

}  // namespace

PlanResult run_plan(const PlanSpace& sp, const PlanCostFn& cost_fn) {
  const auto t0 = std::chrono::steady_clock::now();
  if (sp.global_batch < 1) throw std::invalid_argument(fmt::format("--global-batch must be >= 1 (got {})", sp.global_batch));
  if (sp.schedules.empty()) throw std::invalid_argument("--schedules: give at least one schedule");
  if (sp.stages.empty()) throw std::invalid_argument("--stages: give at least one pipeline depth");
  for (int P : sp.stages)
    if (P < 1 || P > 4096) throw std::invalid_argument(fmt::format("--stages {}: must be in 1..4096", P));
  std::vector<int> sizes = sp.micro_batch_sizes.empty() ? divisors(sp.global_batch) : sp.micro_batch_sizes;
  std::vector<int> usable;
  for (int b : sizes) {
    if (b < 1) throw std::invalid_argument(fmt::format("--mb-sizes {}: must be >= 1", b));
    if (sp.global_batch % b == 0) usable.push_back(b);
  }
  if (usable.empty())
    throw std::invalid_argument(fmt::format("--mb-sizes: none divides --global-batch {}", sp.global_batch));

  // Every configuration of the space.
  std::vector<Config> configs;
  for (const std::string& name : sp.schedules) {
    if (!find_schedule(name))
      throw std::invalid_argument(fmt::format("--schedules: unknown schedule '{}'", name));
    const bool virtual_stages = find_schedule(name)->uses_virtual;
    const std::vector<int> vs = virtual_stages ? sp.virtual_stages : std::vector<int>{1};
    for (int P : sp.stages)
      for (int v : vs)
        for (int b : usable)
          for (WeightPolicy w : sp.backward) {
            // forward equals current where no micro-batch crosses an update (synchronous).
            if (w == WeightPolicy::kForward && synchronous(name)) continue;
            if (w == WeightPolicy::kRecompute && split_backward(name)) continue;
            if (w != WeightPolicy::kCurrent && (name == "pipedream" || name == "pipedream-2bw")) continue;
            configs.push_back({name, P, v, b, sp.global_batch / b, w});
          }
  }

  if (configs.size() > kMaxPlanConfigurations)
    throw std::invalid_argument(fmt::format("the space holds {} configurations (allowed: at most {}): give fewer "
                                            "--stages, --mb-sizes, --schedules, --virtual or --backward values",
                                            configs.size(), kMaxPlanConfigurations));
  PlanResult res;
  // Pass 1: build each, exact memory and step bound.
  for (const Config& c : configs) {
    PlanCandidate pc;
    pc.schedule = c.schedule;
    pc.P = c.P, pc.v = c.v, pc.micro_batch = c.b, pc.microbatches = c.M, pc.backward = c.backward;
    pc.steps = steps_for(sp, c.P * c.v, c.M);
    try {
      Built b = build(sp, c, pc.steps, cost_fn);
      pc.layout = b.cost.layout;
      // Updates crossed between a forward and the update its gradient enters: the drift, or
      // the gradient delay where the policy hides the drift (forward, double buffer).
      for (const StageFacts& f : b.analysis.stages) pc.max_drift = std::max({pc.max_drift, f.max_drift, f.max_delay});
      pc.memory = pc.memory_bound = program_order_peak(b.schedule, b.analysis, b.cost.cost);
      pc.step_bound = step_lower_bound(b.schedule, b.analysis, b.cost.cost);
      pc.status = PlanStatus::kSimulated;
      if (sp.prune && sp.memory_limit > 0 && pc.memory > sp.memory_limit) {
        pc.status = PlanStatus::kOverMemory;
        pc.note = fmt::format("peak memory {:.4g} GiB > limit", pc.memory / (1ull << 30));
      }
    } catch (const std::exception& e) {
      pc.status = PlanStatus::kInvalid;
      pc.note = e.what();
    }
    res.candidates.push_back(std::move(pc));
  }
  std::stable_sort(res.candidates.begin(), res.candidates.end(), [](const PlanCandidate& a, const PlanCandidate& b) {
    return a.step_bound < b.step_bound;
  });

  // Pass 2: simulate in order of the bound, skipping what a simulated candidate dominates.
  std::vector<int> fitting;  // simulated and within the limit
  for (size_t i = 0; i < res.candidates.size(); ++i) {
    PlanCandidate& pc = res.candidates[i];
    if (pc.status != PlanStatus::kSimulated) continue;
    if (sp.prune && pc.memory >= 0) {
      bool dominated = false;
      for (int j : fitting) {
        const PlanCandidate& e = res.candidates[j];
        // Only by one with no more drift, so the pick under any drift limit stays exact.
        if (e.max_drift <= pc.max_drift && dominates(e.step_time, e.memory, pc.step_bound, pc.memory)) {
          dominated = true;
          pc.note = fmt::format("dominated by {}", e.label());
          break;
        }
      }
      if (dominated) {
        pc.status = PlanStatus::kDominated;
        continue;
      }
    }
    try {
      Config c{pc.schedule, pc.P, pc.v, pc.micro_batch, pc.microbatches, pc.backward};
      Built b = build(sp, c, pc.steps, cost_fn);
      SimOptions so;
      so.keep_trace = false;  // the metrics are all the search needs
      SimResult r = simulate(b.schedule, b.cost.cost, so);
      const TraceMetrics& m = r.metrics;
      pc.step_time = m.step_time;
      pc.samples_per_second = m.samples_per_second;
      pc.tokens_per_second = m.tokens_per_second;
      pc.bubble = m.bubble;
      pc.steady_bubble = m.steady_bubble;
      pc.sim_peak_memory = m.peak_memory;
      // The exhaustive search judges by the simulated peak, so it checks the bound.
      if (pc.memory < 0 || !sp.prune) pc.memory = m.peak_memory;
      if (sp.memory_limit > 0 && pc.memory > sp.memory_limit) {
        pc.status = PlanStatus::kOverMemory;
        continue;
      }
      fitting.push_back(static_cast<int>(i));
    } catch (const std::exception& e) {
      pc.status = PlanStatus::kInvalid;
      pc.note = e.what();
    }
  }

  // The front: fitting candidates no other fitting candidate strictly dominates.
  for (int i : fitting) {
    const PlanCandidate& a = res.candidates[i];
    bool beaten = false;
    for (int j : fitting)
      if (j != i && dominates(res.candidates[j].step_time, res.candidates[j].memory, a.step_time, a.memory)) {
        beaten = true;
        break;
      }
    if (!beaten) {
      res.candidates[i].status = PlanStatus::kFront;
      res.front.push_back(i);
    }
  }
  std::sort(res.front.begin(), res.front.end(), [&](int a, int b) {
    const PlanCandidate &x = res.candidates[a], &y = res.candidates[b];
    return x.step_time != y.step_time ? x.step_time < y.step_time : x.memory < y.memory;
  });
  for (const PlanCandidate& c : res.candidates) {
    res.simulated += c.status == PlanStatus::kFront || c.status == PlanStatus::kSimulated ||
                     (c.status == PlanStatus::kOverMemory && c.step_time > 0);
    res.over_memory += c.status == PlanStatus::kOverMemory;
    res.dominated += c.status == PlanStatus::kDominated;
    res.invalid += c.status == PlanStatus::kInvalid;
  }

  // The recommendation: the fastest fitting candidate within the drift limit, then the
  // smallest memory (pruning only skips candidates beaten by one with no more drift).
  for (int i : fitting) {
    const PlanCandidate& c = res.candidates[i];
    if (sp.max_drift >= 0 && c.max_drift > sp.max_drift) continue;
    if (res.recommended >= 0) {
      const PlanCandidate& r = res.candidates[res.recommended];
      if (c.step_time > r.step_time || (c.step_time == r.step_time && c.memory >= r.memory)) continue;
    }
    res.recommended = i;
  }
  const std::string limit = sp.memory_limit > 0 ? fmt::format("{:.4g} GiB per device", sp.memory_limit / (1ull << 30))
                                                : std::string("no memory limit");
  const std::string drift = sp.max_drift >= 0 ? fmt::format(", drift <= {}", sp.max_drift) : std::string();
  if (res.recommended < 0) {
    res.reason = fitting.empty() ? fmt::format("no configuration fits {}", limit)
                                 : fmt::format("no configuration that fits has drift <= {}", sp.max_drift);
  } else {
    const PlanCandidate& r = res.candidates[res.recommended];
    res.reason = sp.memory_limit > 0 ? fmt::format("the highest throughput that fits {}{}", limit, drift)
                                     : fmt::format("the highest throughput ({}{})", limit, drift);
    // Against the fastest fitting candidate without drift, when the pick has some.
    if (r.max_drift > 0) {
      int best_sync = -1;
      for (int i : fitting)
        if (res.candidates[i].max_drift == 0 &&
            (best_sync < 0 || res.candidates[i].step_time < res.candidates[best_sync].step_time))
          best_sync = i;
      if (best_sync >= 0)
        res.reason += fmt::format("; {:.2f}x the fastest one without drift ({}), at drift {}",
                                  res.candidates[best_sync].step_time / r.step_time,
                                  res.candidates[best_sync].label(), r.max_drift);
    }
    if (r.memory > 0 && sp.memory_limit > 0)
      res.reason += fmt::format("; uses {:.0f}% of the limit", 100 * r.memory / sp.memory_limit);
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace paci
