#include <algorithm>

#include "schedules/gen/generators.h"
#include "schedules/huge_pages.h"

namespace paci {

void append_1f1b(std::vector<Action>& prog, int stage, int P, int first, int count, int accum) {
  const int warmup = std::min(P - 1 - stage, count);
  // One allocation for the whole append (growing geometrically when appended to repeatedly).
  const size_t need = prog.size() + 2 * static_cast<size_t>(count) + count / accum;
  if (need > prog.capacity()) prog.reserve(std::max(need, 2 * prog.capacity()));
  populate(prog, need);
  int backwards = 0;
  auto backward = [&](int m) {
    prog.push_back(Bwd(stage, first + m));
    if (++backwards % accum == 0) prog.push_back(Opt(stage));
  };
  for (int m = 0; m < warmup; ++m) prog.push_back(Fwd(stage, first + m));
  for (int m = warmup; m < count; ++m) {
    prog.push_back(Fwd(stage, first + m));
    backward(m - warmup);
  }
  for (int m = count - warmup; m < count; ++m) backward(m);
}

Schedule linear_skeleton(const char* name, int P, int M, int N, int accum, WeightPolicy policy) {
  Schedule s;
  s.name = name;
  s.spec = {P, 1, M, N};
  s.accum = accum;
  s.policy = policy;
  s.stage_device.resize(P);
  for (int st = 0; st < P; ++st) s.stage_device[st] = st;
  s.programs.resize(P);
  return s;
}

}  // namespace paci
