// interleaved-1f1b (Megatron-LM virtual pipeline, Narayanan et al., 2021): each of the D
// devices holds v model chunks; chunk c of device d is stage c*D + d, so a micro-batch
// visits every device v times. Micro-batches go in groups of D: for each group, chunk 0 of
// every micro-batch in the group, then chunk 1, ...; backwards take the chunks in reverse.
// Device d warms up with 2(D-1-d) + (v-1)D forwards, then alternates one forward one
// backward, then cools down; OPT for each of its stages after the flush.
//   bubble: (D-1)/(v*M) of the ideal step time with uniform costs (v times less than 1F1B).
//   memory: about 1F1B's per device, plus (v-1)/v * D micro-batch chunks.
#include <algorithm>

#include "schedules/gen/generators.h"

namespace paci {

Schedule gen_interleaved_1f1b(int D, int M, int N, int v) {
  Schedule s;
  s.name = "interleaved-1f1b";
  s.spec = {D, v, M, N};
  s.accum = M;
  s.policy = WeightPolicy::kCurrent;
  const int S = D * v;
  s.stage_device.resize(S);
  for (int st = 0; st < S; ++st) s.stage_device[st] = st % D;
  s.programs.resize(D);
  // (chunk, micro-batch within the step) in Megatron's group order.
  std::vector<std::pair<int, int>> fwd_order, bwd_order;
  for (int g = 0; g < M; g += D) {
    int end = std::min(M, g + D);
    for (int c = 0; c < v; ++c)
      for (int j = g; j < end; ++j) fwd_order.emplace_back(c, j);
    for (int c = v - 1; c >= 0; --c)
      for (int j = g; j < end; ++j) bwd_order.emplace_back(c, j);
  }
  const int total = M * v;
  for (int d = 0; d < D; ++d) {
    auto& prog = s.programs[d];
    prog.reserve(static_cast<size_t>(N) * (2 * total + v));  // its final size: no regrowth
    const int warmup = std::min(total, 2 * (D - 1 - d) + (v - 1) * D);
    for (int k = 0; k < N; ++k) {
      auto F = [&](int i) { prog.push_back(Fwd(fwd_order[i].first * D + d, k * M + fwd_order[i].second)); };
      auto B = [&](int i) { prog.push_back(Bwd(bwd_order[i].first * D + d, k * M + bwd_order[i].second)); };
      for (int i = 0; i < warmup; ++i) F(i);
      for (int i = 0; i + warmup < total; ++i) {
        F(warmup + i);
        B(i);
      }
      for (int i = total - warmup; i < total; ++i) B(i);
      for (int c = 0; c < v; ++c) prog.push_back(Opt(c * D + d));
    }
  }
  s.bounds.max_drift.assign(S, 0);
  s.bounds.max_delay.assign(S, 0);
  s.bounds.max_weight_copies.assign(S, 1);
  return s;
}

}  // namespace paci
