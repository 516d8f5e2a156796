#include "schedules/registry.h"

#include <fmt/format.h>

#include "schedules/gen/generators.h"

namespace paci {

const std::vector<ScheduleInfo>& schedule_catalog() {
  static const std::vector<ScheduleInfo> catalog = {
      {"gpipe", "all forwards, then all backwards, flush; activations of M micro-batches"},
      {"1f1b", "PipeDream-flush/Megatron 1F1B: one forward one backward, flush; bubble (P-1)/(M+P-1)"},
      {"paci", "1F1B without the flush, local OPT every a backwards; no bubble, drift <= ceil((P-1-s)/a)", false, true},
      {"interleaved-1f1b", "Megatron virtual pipeline, v chunks per device; bubble (P-1)/(v*M)", true},
      {"zb-h1", "Zero Bubble H1: split backward (I, W), 1F1B memory; bubble ~1/3 of 1F1B"},
      {"zb-1p", "Zero Bubble automatic, 1x 1F1B activation memory (built from a cost model: paci sim)", false, false, true},
      {"zb-2p", "Zero Bubble automatic, 2x 1F1B activation memory, near-zero bubble (paci sim)", false, false, true},
      {"zb-v", "Zero Bubble ZB-V: V placement (2 stages per device), split backward, 1F1B memory; idles only to fill"},
      {"v-half", "V-Half: V placement, split backward, ~1/2 of 1F1B's activation memory"},
      {"v-min", "V-Min: V placement, split backward, ~1/3 of 1F1B's activation memory"},
      {"dualpipev", "DeepSeek DualPipeV: V placement, overlapped F&B actions; bubble (P-1)(FB+B-3W) a step, M >= 2P"},
      {"interleaved-zb", "interleaved 1F1B with split backward (PyTorch ScheduleInterleavedZeroBubble)", true},
      {"looped-bfs", "looped breadth-first: v stages per device, all F then all B; GPipe with v chunks", true},
      {"paci-v", "PACI on the V placement: no flush, local OPT every a backwards, fewer activations per device than paci", false, true},
      {"pipedream", "async 1F1B, update every micro-batch, weight stashing (P-s versions)"},
      {"pipedream-2bw", "async 1F1B, 2 weight buffers, gradients over M micro-batches, delay 1"},
  };
  return catalog;
}

const ScheduleInfo* find_schedule(std::string_view name) {
  for (const auto& info : schedule_catalog())
    if (info.name == name) return &info;
  return nullptr;
}

namespace {

std::string names() {
  std::string out;
  for (const auto& info : schedule_catalog()) out += (out.empty() ? "" : ", ") + info.name;
  return out;
}

void require_positive(const char* flag, int value) {
  if (value < 1) throw ParamError(flag, fmt::format("{} must be >= 1 (got {})", flag, value));
}

// The checks every generator's parameters pass (make_schedule's first part).
const ScheduleInfo& check_params(std::string_view name, const ScheduleParams& p) {
  const ScheduleInfo* info = find_schedule(name);
  if (!info)
    throw ParamError("--schedule",
                     fmt::format("--schedule: unknown schedule '{}' (allowed: {})", name, names()));
  if (info->needs_cost_model)
    throw ParamError("--schedule",
                     fmt::format("--schedule {} is built from a cost model: use `paci sim "
                                 "--schedule {}` (it needs durations of F, I and W)",
                                 name, name));
  require_positive("--stages", p.stages);
  require_positive("--microbatches", p.microbatches);
  require_positive("--steps", p.steps);
  if (p.stages > 4096) throw ParamError("--stages", fmt::format("--stages must be <= 4096 (got {})", p.stages));
  const long total = static_cast<long>(p.microbatches) * p.steps;
  if (total > (1L << 24))
    throw ParamError("--microbatches", fmt::format("--microbatches x --steps must be <= {} (got {})",
                                                   1L << 24, total));
  if (!info->uses_virtual && p.virtual_stages && *p.virtual_stages != 1)
    throw ParamError("--virtual", fmt::format("--virtual applies only to interleaved-1f1b, "
                                              "interleaved-zb and looped-bfs (schedule {} has a "
                                              "fixed number of stages per device)", name));
  if (!info->uses_accum && p.accum && *p.accum != p.microbatches)
    throw ParamError("--accum", fmt::format("--accum applies only to paci and paci-v (schedule {} steps "
                                            "after every {} micro-batches)",
                                            name, name == "pipedream" ? 1 : p.microbatches));
  return *info;
}

// paci's and paci-v's a: it must divide the run's micro-batches.
int accum_of(const ScheduleParams& p) {
  const long total = static_cast<long>(p.microbatches) * p.steps;
  const int a = p.accum.value_or(p.microbatches);
  if (a < 1 || total % a != 0)
    throw ParamError("--accum", fmt::format("--accum must be >= 1 and divide --microbatches x "
                                            "--steps = {} (got {})", total, a));
  return a;
}

}  // namespace

Schedule make_paci_v(const ScheduleParams& p, const PaciVCosts& costs) {
  check_params("paci-v", p);
  return gen_paci_v(p.stages, p.microbatches, p.steps, accum_of(p), costs);
}

Schedule make_schedule(std::string_view name, const ScheduleParams& p) {
  check_params(name, p);
  const int P = p.stages, M = p.microbatches, N = p.steps;
  if (name == "gpipe") return gen_gpipe(P, M, N);
  if (name == "1f1b") return gen_1f1b(P, M, N);
  if (name == "paci") return gen_paci(P, M, N, accum_of(p));
  if (name == "paci-v") return make_paci_v(p, {});
  if (name == "pipedream") return gen_pipedream(P, M, N);
  if (name == "pipedream-2bw") {
    if (M < P - 1)
      throw ParamError("--microbatches",
                       fmt::format("--microbatches must be >= --stages - 1 = {} for pipedream-2bw "
                                   "(two weight buffers; got {})", P - 1, M));
    return gen_pipedream_2bw(P, M, N);
  }
  if (name == "interleaved-zb" || name == "looped-bfs") {
    int v = p.virtual_stages.value_or(2);
    if (v < 1 || v > 64)
      throw ParamError("--virtual", fmt::format("--virtual must be in 1..64 (got {})", v));
    return name == "looped-bfs" ? gen_looped_bfs(P, M, N, v) : gen_interleaved_zb(P, M, N, v);
  }
  if (name == "zb-v") return gen_zb_v(P, M, N);
  if (name == "v-half") return gen_v_half(P, M, N);
  if (name == "v-min") return gen_v_min(P, M, N);
  if (name == "dualpipev") {
    if (M < 2 * P)
      throw ParamError("--microbatches",
                       fmt::format("--microbatches must be >= 2 x --stages = {} for dualpipev (its "
                                   "main phase needs M - 2P + 1 >= 1 overlapped pairs; got {})",
                                   2 * P, M));
    return gen_dualpipev(P, M, N);
  }
  if (name == "interleaved-1f1b") {
    int v = p.virtual_stages.value_or(2);
    if (v < 1 || v > 64)
      throw ParamError("--virtual", fmt::format("--virtual must be in 1..64 (got {})", v));
    if (M % P != 0)
      throw ParamError("--microbatches",
                       fmt::format("--microbatches must be a multiple of --stages = {} for "
                                   "interleaved-1f1b (micro-batches go in groups of one per "
                                   "device; got {})", P, M));
    return gen_interleaved_1f1b(P, M, N, v);
  }
  if (name == "zb-h1") return gen_zb_h1(P, M, N);
  throw ParamError("--schedule", fmt::format("--schedule: no generator for '{}'", name));
}

}  // namespace paci
