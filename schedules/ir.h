// The schedule IR: a pipeline schedule as data.
//
// A Schedule is an ordered list of actions per device (program order) over all N optimizer
// steps of a run. Micro-batch ids are global across steps (mb = step * M + j), so
// asynchronous schedules, which have no flush between steps, are described whole.
// Dependencies between actions are implied by the action kinds (see graph.h); weight
// versions, drift and memory follow from program order and the weight policy (analysis.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace paci {

// F: forward. B: full backward. I: backward for inputs only. W: backward for weights only
// (the zero-bubble split: B = I then W). OPT: a local optimizer step of one stage.
// FB: an overlapped forward and full backward run as one action (DualPipe's "F&B"): the
// forward of (stage, mb) together with the backward of (stage_b, mb_b), two stages on the
// same device, with a cost of its own (the cost model's fb). It waits for the inputs of
// both halves and its outputs appear when it ends. PyTorch writes it (0F7;7B3)OVERLAP_F_B.
enum class ActionKind : uint8_t { F, B, I, W, OPT, FB };

struct Action {
  ActionKind kind = ActionKind::F;
  int stage = 0;
  int mb = -1;  // global micro-batch id; -1 for OPT
  // FB only: the stage and micro-batch of its backward half (stage, mb are its forward's).
  int stage_b = -1;
  int mb_b = -1;

  friend bool operator==(const Action& a, const Action& b) {
    return a.kind == b.kind && a.stage == b.stage && a.mb == b.mb && a.stage_b == b.stage_b &&
           a.mb_b == b.mb_b;
  }
  friend bool operator!=(const Action& a, const Action& b) { return !(a == b); }
};

inline Action Fwd(int stage, int mb) { return {ActionKind::F, stage, mb}; }
inline Action Bwd(int stage, int mb) { return {ActionKind::B, stage, mb}; }
inline Action BwdI(int stage, int mb) { return {ActionKind::I, stage, mb}; }
inline Action BwdW(int stage, int mb) { return {ActionKind::W, stage, mb}; }
inline Action Opt(int stage) { return {ActionKind::OPT, stage, -1}; }
inline Action FwdBwd(int f_stage, int f_mb, int b_stage, int b_mb) {
  return {ActionKind::FB, f_stage, f_mb, b_stage, b_mb};
}

// The plain actions an action is made of, in the order they take effect: an FB gives its F
// then its B, any other action itself. Returns how many were written to out.
inline int sub_actions(const Action& a, Action out[2]) {
  if (a.kind != ActionKind::FB) {
    out[0] = a;
    return 1;
  }
  out[0] = Fwd(a.stage, a.mb);
  out[1] = Bwd(a.stage_b, a.mb_b);
  return 2;
}

// PyTorch torch.distributed.pipelining action strings: "0F1", "1B0", "2I3", "2W3",
// "(0F7;7B3)OVERLAP_F_B"; the optimizer step, which PyTorch keeps outside its schedules, is
// written "0OPT".
std::string to_string(const Action& a);
std::string_view kind_name(ActionKind k);

// How the backward of a micro-batch chooses its weights.
//  current:       whatever is current when the backward runs (GPipe, 1F1B, PACI).
//  stash:         the version its forward used, kept as a copy (PipeDream).
//  double-buffer: forwards of global batch k use version max(k-1, 0) and the backward the
//                 same; two versions are held (PipeDream-2BW), so every update applies a
//                 gradient computed one version earlier.
// The backward semantics of an asynchronous schedule (`--backward`; each is a policy of a
// schedule whose forwards use the current version):
//  forward:       matmul input gradients with the weights the forward used (what bf16
//                 autocast does: a linear layer saves its bf16 weight cast at forward time),
//                 LayerNorm with the current ones. The versions in flight are kept as copies.
//  recompute:     the stage's forward is rerun with the current weights right before the
//                 backward; only the stage inputs are kept between the two (whole B only).
enum class WeightPolicy : uint8_t { kCurrent, kStash, kDoubleBuffer, kForward, kRecompute };
std::string_view policy_name(WeightPolicy p);
std::optional<WeightPolicy> parse_policy(std::string_view name);

// The weight-version rule, the one place the analysis, the simulator and the runtime take it
// from. A stage's version is the number of its OPTs so far (`current`). A forward of global
// micro-batch `mb` (global batch mb / accum) uses the current version, except under a double
// buffer: the version made by the batch before its own, max(mb / accum - 1, 0), counted from
// `base` (the version a resumed run starts at, whose micro-batch ids start again at 0).
inline int forward_version(WeightPolicy p, int current, int64_t mb, int accum, int base = 0) {
  if (p != WeightPolicy::kDoubleBuffer) return current;
  const int64_t prev = mb / accum - 1;
  return base + static_cast<int>(prev > 0 ? prev : 0);
}
// A backward (B or I) uses the current version under `current` and `recompute`, else its
// forward's (under `forward`: the version of its matmul weights; LayerNorm uses the current).
inline int backward_version(WeightPolicy p, int current, int forward) {
  return p == WeightPolicy::kCurrent || p == WeightPolicy::kRecompute ? current : forward;
}
// Whether a version must be copied to outlive an update (stash, double buffer, forward).
inline bool keeps_old_versions(WeightPolicy p) {
  return p != WeightPolicy::kCurrent && p != WeightPolicy::kRecompute;
}
// Whether the backward reruns the stage's forward first, keeping only the stage inputs.
inline bool recomputes_forward(WeightPolicy p) { return p == WeightPolicy::kRecompute; }

// Bounds a schedule declares about itself; validation checks them. Empty vectors mean
// "not declared". Indexed by stage.
struct DeclaredBounds {
  std::vector<int> max_drift;
  std::vector<int> max_delay;
  std::vector<int> max_inflight;
  std::vector<int> max_weight_copies;
  bool operator==(const DeclaredBounds& o) const {
    return max_drift == o.max_drift && max_delay == o.max_delay &&
           max_inflight == o.max_inflight && max_weight_copies == o.max_weight_copies;
  }
};

struct PipelineSpec {
  int devices = 1;         // D (ranks)
  int virtual_stages = 1;  // v: stages per device; S = D * v
  int microbatches = 1;    // M per optimizer step
  int steps = 1;           // N
  int stages() const { return devices * virtual_stages; }
  int total_microbatches() const { return microbatches * steps; }
  bool operator==(const PipelineSpec& o) const {
    return devices == o.devices && virtual_stages == o.virtual_stages &&
           microbatches == o.microbatches && steps == o.steps;
  }
};

struct Schedule {
  std::string name;  // generator name, or what the importer was given
  PipelineSpec spec;
  // Micro-batches per optimizer step of a stage (the accumulation window: PACI's a). Global
  // batch k is micro-batches [k*accum, (k+1)*accum).
  int accum = 1;
  WeightPolicy policy = WeightPolicy::kCurrent;
  std::vector<int> stage_device;                // device holding each stage
  std::vector<std::vector<Action>> programs;    // per device, in program order
  DeclaredBounds bounds;

  int stages() const { return static_cast<int>(stage_device.size()); }
  int devices() const { return static_cast<int>(programs.size()); }
  size_t num_actions() const;
  bool operator==(const Schedule& o) const {
    return name == o.name && spec == o.spec && accum == o.accum && policy == o.policy &&
           stage_device == o.stage_device && programs == o.programs && bounds == o.bounds;
  }
};

// Where an action sits: device and index in that device's program.
struct ActionRef {
  int device = -1;
  int pos = -1;
};

}  // namespace paci
