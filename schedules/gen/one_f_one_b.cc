// The 1F1B family: one order, four schedules that differ in where the optimizer steps go
// and which weights a backward uses.
//
// 1f1b (PipeDream-flush / Megatron 1F1B): per step, a warm-up of min(P-1-s, M) forwards on
//   stage s, then one forward one backward, then the cool-down backwards and a flush; OPT
//   after the flush. Bubble (P-1)/(M+P-1); activations of min(P-s, M) micro-batches.
//
// paci (arXiv 2606.07881): 1F1B without the flush, over all N*M micro-batches. Stage s keeps
//   at most P-s micro-batches in flight (1F1B's memory), runs a waiting backward first, and
//   steps its own optimizer after every a-th backward: no barrier, no weight copies. No
//   bubble in steady state. Forward of micro-batch i uses version floor((i-(P-1-s))/a), its
//   backward floor(i/a): drift <= ceil((P-1-s)/a), mean (P-1-s)/a, 0 on the last stage.
//
// pipedream (Narayanan et al., 2019): the same order with an update after every backward and
//   weight stashing: the backward uses the version its forward used (drift 0), so stage s
//   holds up to P-s versions; the gradient is applied P-1-s versions later (delay).
//
// pipedream-2bw (Narayanan et al., 2021): the same order, gradients accumulated over the M
//   micro-batches of a step, two weight buffers: forwards of batch k use version k-1 and the
//   backward the same, so every update applies a gradient one version old (delay 1). Needs
//   M >= P-1 so that version k-1 exists when batch k starts on stage 0.
#include <algorithm>

#include "schedules/gen/generators.h"

namespace paci {

Schedule gen_1f1b(int P, int M, int N) {
  Schedule s = linear_skeleton("1f1b", P, M, N, M, WeightPolicy::kCurrent);
  for (int st = 0; st < P; ++st) {
    for (int k = 0; k < N; ++k) append_1f1b(s.programs[st], st, P, k * M, M, M);
    s.bounds.max_inflight.push_back(std::min(P - st, M));
  }
  s.bounds.max_drift.assign(P, 0);
  s.bounds.max_delay.assign(P, 0);
  s.bounds.max_weight_copies.assign(P, 1);
  return s;
}

Schedule gen_paci(int P, int M, int N, int a) {
  Schedule s = linear_skeleton("paci", P, M, N, a, WeightPolicy::kCurrent);
  const int T = M * N;
  for (int st = 0; st < P; ++st) {
    append_1f1b(s.programs[st], st, P, 0, T, a);
    int bound = (P - 1 - st + a - 1) / a;
    s.bounds.max_drift.push_back(bound);
    s.bounds.max_delay.push_back(bound);
    s.bounds.max_inflight.push_back(std::min(P - st, T));
  }
  s.bounds.max_weight_copies.assign(P, 1);
  return s;
}

Schedule gen_pipedream(int P, int M, int N) {
  Schedule s = linear_skeleton("pipedream", P, M, N, 1, WeightPolicy::kStash);
  const int T = M * N;
  for (int st = 0; st < P; ++st) {
    append_1f1b(s.programs[st], st, P, 0, T, 1);
    s.bounds.max_delay.push_back(P - 1 - st);
    s.bounds.max_inflight.push_back(std::min(P - st, T));
    s.bounds.max_weight_copies.push_back(std::min(P - st, T));
  }
  s.bounds.max_drift.assign(P, 0);
  return s;
}

Schedule gen_pipedream_2bw(int P, int M, int N) {
  Schedule s = linear_skeleton("pipedream-2bw", P, M, N, M, WeightPolicy::kDoubleBuffer);
  const int T = M * N;
  for (int st = 0; st < P; ++st) {
    append_1f1b(s.programs[st], st, P, 0, T, M);
    s.bounds.max_inflight.push_back(std::min(P - st, T));
  }
  s.bounds.max_drift.assign(P, 0);
  s.bounds.max_delay.assign(P, 1);
  s.bounds.max_weight_copies.assign(P, 2);
  return s;
}

}  // namespace paci
