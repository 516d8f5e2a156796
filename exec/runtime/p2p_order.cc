#include "exec/runtime/p2p_order.h"

#include <map>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace paci {

std::optional<std::string> p2p_order_mismatch(const Schedule& s) {
  const int S = s.stages();
  // (src device, dst device) -> message names in the sender's and in the receiver's order.
  std::map<std::pair<int, int>, std::vector<std::string>> sent, received;
  Action sub[2];
  for (int d = 0; d < s.devices(); ++d)
    for (const Action& whole : s.programs[d])
     for (int k = 0, n = sub_actions(whole, sub); k < n; ++k) {  // an FB runs its F, then its B
      const Action& a = sub[k];
      if (a.kind == ActionKind::F) {
        if (a.stage + 1 < S && s.stage_device[a.stage + 1] != d)
          sent[{d, s.stage_device[a.stage + 1]}].push_back(fmt::format("activation {}->{} mb {}", a.stage, a.stage + 1, a.mb));
        if (a.stage > 0 && s.stage_device[a.stage - 1] != d)
          received[{s.stage_device[a.stage - 1], d}].push_back(fmt::format("activation {}->{} mb {}", a.stage - 1, a.stage, a.mb));
      }
      if (a.kind == ActionKind::B || a.kind == ActionKind::I) {
        if (a.stage > 0 && s.stage_device[a.stage - 1] != d)
          sent[{d, s.stage_device[a.stage - 1]}].push_back(fmt::format("gradient {}->{} mb {}", a.stage, a.stage - 1, a.mb));
        if (a.stage + 1 < S && s.stage_device[a.stage + 1] != d)
          received[{s.stage_device[a.stage + 1], d}].push_back(fmt::format("gradient {}->{} mb {}", a.stage + 1, a.stage, a.mb));
      }
    }
  for (const auto& [pair, out] : sent) {
    const auto& in = received[pair];
    for (size_t k = 0; k < out.size() && k < in.size(); ++k)
      if (out[k] != in[k])
        return fmt::format("device {} sends to device {} first the {} but device {} first receives the {} "
                           "(message {}): a transport without tags (NCCL) needs both in the same order",
                           pair.first, pair.second, out[k], pair.second, in[k], k);
  }
  return std::nullopt;
}

}  // namespace paci
