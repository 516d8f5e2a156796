// Helpers shared by the simulator tests.
#pragma once

#include <string>

#include "schedules/registry.h"
#include "schedules/trace/metrics.h"
#include "schedules/validate.h"
#include "sim/cost.h"
#include "sim/simulator.h"

namespace paci::testing {

inline Schedule gen(const std::string& name, int P, int M, int N = 1, int v = 0, int a = 0) {
  ScheduleParams p;
  p.stages = P;
  p.microbatches = M;
  p.steps = N;
  if (v > 0) p.virtual_stages = v;
  if (a > 0) p.accum = a;
  return make_schedule(name, p);
}

// Uniform costs, no communication, activations counted in slots.
inline CostModel uniform(double f = 1, double b = 2, double w = -1) {
  StageCost c;
  c.f = f;
  c.b = b;
  c.w = w < 0 ? b / 2 : w;
  c.i = b - c.w;
  CostModel m;
  m.stages = {c};
  m.memory_unit = "slots";
  m.description = "test uniform";
  return m;
}

struct SimRun {
  SimResult sim;
  TraceMetrics m;
};

inline SimRun run(const Schedule& s, const CostModel& c, SimOptions o = {}) {
  o.dag_bound = true;
  SimRun r{simulate(s, c, o), {}};
  r.m = compute_metrics(r.sim.trace);
  return r;
}

}  // namespace paci::testing
