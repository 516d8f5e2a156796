#include "schedules/graph.h"

#include <algorithm>
#include <deque>
#include <sstream>

#include <fmt/format.h>

#include "schedules/huge_pages.h"

namespace paci {
namespace {

std::string where(ActionRef r, const Action& a) {
  return fmt::format("device {}, position {}: {}", r.device, r.pos, to_string(a));
}

[[noreturn]] void fail(const Schedule& s, ActionRef r, const std::string& msg) {
  throw ScheduleError(msg, program_excerpt(s, r));
}

}  // namespace

std::string program_excerpt(const Schedule& s, ActionRef marked, int window) {
  std::ostringstream out;
  int lo = 0, hi = 0;
  if (marked.device >= 0) {
    lo = std::max(0, marked.pos - window);
    hi = marked.pos + window + 1;
  } else {
    hi = 2 * window + 1;
  }
  for (int d = 0; d < s.devices(); ++d) {
    const auto& prog = s.programs[d];
    out << fmt::format("  device {:>2} |", d);
    if (lo > 0) out << " ...";
    for (int p = lo; p < std::min<int>(hi, prog.size()); ++p) {
      bool mark = d == marked.device && p == marked.pos;
      out << (mark ? " >>" : " ") << to_string(prog[p]) << (mark ? "<<" : "");
    }
    if (static_cast<int>(prog.size()) > hi) out << " ...";
    out << "\n";
  }
  if (marked.device >= 0)
    out << fmt::format("  (positions {}..{}; >>X<< marks device {}, position {})\n", lo,
                       hi - 1, marked.device, marked.pos);
  return out.str();
}

ActionIndex::ActionIndex(const Schedule& s) : s_(s) {
  const int S = s.stages();
  const int D = s.devices();
  const int T = s.spec.total_microbatches();
  if (D != s.spec.devices)
    throw ScheduleError(fmt::format("schedule has {} device programs but its spec says {} devices",
                                    D, s.spec.devices));
  if (S != s.spec.stages())
    throw ScheduleError(fmt::format(
        "schedule maps {} stages to devices but its spec says {} (devices {} x virtual {})", S,
        s.spec.stages(), s.spec.devices, s.spec.virtual_stages));
  for (int st = 0; st < S; ++st)
    if (s.stage_device[st] < 0 || s.stage_device[st] >= D)
      throw ScheduleError(fmt::format("stage {} is mapped to device {}, but devices are 0..{}",
                                      st, s.stage_device[st], D - 1));
  offset_.assign(D + 1, 0);
  for (int d = 0; d < D; ++d) offset_[d + 1] = offset_[d] + static_cast<int64_t>(s.programs[d].size());
  if (offset_[D] >= INT32_MAX)
    throw ScheduleError(fmt::format("schedule has {} actions; at most {} are supported", offset_[D],
                                    INT32_MAX - 1));
  T_ = T > 0 ? static_cast<size_t>(T) : 0;
  const size_t slots = static_cast<size_t>(S) * T_;
  reserve_huge(fb_, slots);
  populate(fb_, slots);
  fb_.resize(slots);
  Action halves[2];  // an FB's
  for (int d = 0; d < D; ++d) {
    const auto& prog = s.programs[d];
    for (int p = 0; p < static_cast<int>(prog.size()); ++p) {
      const Action& a = prog[p];
      const int32_t me = static_cast<int32_t>(offset_[d] + p);
      // The plain actions at position p: the action, or an FB's two halves.
      const Action* subs = &a;
      int n = 1;
      if (a.kind == ActionKind::FB) n = sub_actions(a, halves), subs = halves;
      for (int k = 0; k < n; ++k) {
        const Action& x = subs[k];
        if (x.stage < 0 || x.stage >= S)
          fail(s, {d, p}, fmt::format("{} names stage {}, but the schedule has {} stages (0..{})",
                                      where({d, p}, a), x.stage, S, S - 1));
        if (s.stage_device[x.stage] != d)
          fail(s, {d, p}, fmt::format("{} is for stage {}, which lives on device {}", where({d, p}, a),
                                      x.stage, s.stage_device[x.stage]));
        if (x.kind == ActionKind::OPT) continue;
        if (x.mb < 0 || x.mb >= T)
          fail(s, {d, p}, fmt::format("{} names micro-batch {}, but micro-batches are 0..{} "
                                      "({} per step x {} steps)",
                                      where({d, p}, a), x.mb, T - 1, s.spec.microbatches, s.spec.steps));
        // I and W slots exist only in a schedule that splits a backward.
        if ((x.kind == ActionKind::I || x.kind == ActionKind::W) && iw_.empty()) {
          reserve_huge(iw_, slots);
          iw_.resize(slots);
        }
        const size_t at = slot(x.stage, x.mb);
        int32_t& held = x.kind == ActionKind::F   ? fb_[at].f
                        : x.kind == ActionKind::B ? fb_[at].b
                        : x.kind == ActionKind::I ? iw_[at].i
                                                  : iw_[at].w;
        if (held >= 0) {
          ActionRef first = ref(held);
          fail(s, {d, p}, fmt::format("{} {} (first at device {}, position {})", where({d, p}, a),
                                      a.kind == ActionKind::FB ? "repeats " + to_string(x) : "is a duplicate",
                                      first.device, first.pos));
        }
        held = me;
      }
      if (a.kind == ActionKind::FB && a.stage == a.stage_b && a.mb == a.mb_b)
        fail(s, {d, p}, fmt::format("{} overlaps the backward of its own forward: an overlapped F&B "
                                    "needs two different (stage, micro-batch) pairs", where({d, p}, a)));
    }
  }
  for (int st = 0; st < S; ++st) {
    for (int m = 0; m < T; ++m) {
      const size_t k = slot(st, m);
      // The common case: an F and a whole B, no I or W.
      if (fb_[k].f >= 0 && fb_[k].b >= 0 && (iw_.empty() || (iw_[k].i < 0 && iw_[k].w < 0))) continue;
      int d = s.stage_device[st];
      ActionRef end{d, std::max(0, static_cast<int>(s.programs[d].size()) - 1)};
      if (fwd(st, m) < 0)
        fail(s, end, fmt::format("device {} never runs {}: every (stage, micro-batch) needs "
                                 "exactly one F", d, to_string(Fwd(st, m))));
      bool has_b = bwd(st, m) >= 0, has_i = bwd_input(st, m) >= 0, has_w = bwd_weight(st, m) >= 0;
      if (has_b && (has_i || has_w)) {
        int64_t other = has_i ? bwd_input(st, m) : bwd_weight(st, m);
        fail(s, ref(other),
             fmt::format("{} splits the backward of stage {}, micro-batch {} that {} already "
                         "runs whole: use B, or I and W, not both",
                         where(ref(other), action(other)), st, m, to_string(Bwd(st, m))));
      }
      if (!has_b && !(has_i && has_w)) {
        std::string missing = has_i ? to_string(BwdW(st, m))
                              : has_w ? to_string(BwdI(st, m))
                                      : to_string(Bwd(st, m)) + " (or " + to_string(BwdI(st, m)) +
                                            " and " + to_string(BwdW(st, m)) + ")";
        fail(s, end, fmt::format("device {} never runs {}: stage {}, micro-batch {} has no "
                                 "complete backward", d, missing, st, m));
      }
    }
  }
}

ActionRef ActionIndex::ref(int64_t id) const {
  // The device whose range [offset_[d], offset_[d + 1]) holds id (empty programs skipped).
  const int d = static_cast<int>(std::upper_bound(offset_.begin(), offset_.end(), id) - offset_.begin()) - 1;
  return {d, static_cast<int>(id - offset_[d])};
}

const Action& ActionIndex::action(int64_t id) const {
  const ActionRef r = ref(id);
  return s_.programs[r.device][r.pos];
}

void ActionIndex::data_deps(const Action& a, std::vector<int64_t>& out) const {
  out.clear();
  if (a.kind == ActionKind::FB) {
    // The inputs of both halves (none of them the action itself: validated above).
    Action sub[2];
    sub_actions(a, sub);
    for (const Action& x : sub) sub_deps(x, out);
    return;
  }
  sub_deps(a, out);
}

void ActionIndex::sub_deps(const Action& a, std::vector<int64_t>& out) const {
  const int last = s_.stages() - 1;
  switch (a.kind) {
    case ActionKind::F:
      if (a.stage > 0) out.push_back(fwd(a.stage - 1, a.mb));
      break;
    case ActionKind::B:
    case ActionKind::I:
      out.push_back(fwd(a.stage, a.mb));
      if (a.stage < last) out.push_back(grad_input(a.stage + 1, a.mb));
      break;
    case ActionKind::W:
      out.push_back(bwd_input(a.stage, a.mb));
      break;
    case ActionKind::OPT:
    case ActionKind::FB:
      break;
  }
}

DependencyGraph build_graph(const Schedule& s, const ActionIndex& index) {
  std::vector<std::pair<int64_t, int64_t>> edges;
  edges.reserve(index.size() * 2);
  std::vector<int64_t> deps;
  for (int d = 0; d < s.devices(); ++d) {
    for (int p = 0; p < static_cast<int>(s.programs[d].size()); ++p) {
      int64_t me = index.id({d, p});
      if (p > 0) edges.emplace_back(me - 1, me);
      index.data_deps(s.programs[d][p], deps);
      for (int64_t x : deps) edges.emplace_back(x, me);
    }
  }
  return DependencyGraph(edges.begin(), edges.end(), index.size());
}

InOrderTimes run_in_order(const Schedule& s, const ActionIndex& index,
                          const std::function<double(const Action&)>& duration) {
  const int D = s.devices();
  const size_t n = index.size();
  InOrderTimes t;
  t.start.assign(n, -1);
  t.end.assign(n, -1);
  std::vector<char> done(n, 0);
  std::vector<int> pos(D, 0);
  std::vector<double> free_at(D, 0);
  // Devices blocked on an action, chained through next_waiter (a device waits on one
  // action at a time).
  std::vector<int> first_waiter(n, -1), next_waiter(D, -1);
  std::vector<int64_t> blocked_on(D, -1);
  std::deque<int> ready;
  for (int d = 0; d < D; ++d) ready.push_back(d);
  std::vector<int64_t> deps;
  while (!ready.empty()) {
    int d = ready.front();
    ready.pop_front();
    blocked_on[d] = -1;
    const auto& prog = s.programs[d];
    while (pos[d] < static_cast<int>(prog.size())) {
      int64_t me = index.id({d, pos[d]});
      index.data_deps(prog[pos[d]], deps);
      double begin = free_at[d];
      int64_t missing = -1;
      for (int64_t x : deps) {
        if (!done[x]) {
          missing = x;
          break;
        }
        begin = std::max(begin, t.end[x]);
      }
      if (missing >= 0) {
        blocked_on[d] = missing;
        next_waiter[d] = first_waiter[missing];
        first_waiter[missing] = d;
        break;
      }
      t.start[me] = begin;
      t.end[me] = free_at[d] = begin + duration(prog[pos[d]]);
      done[me] = 1;
      t.makespan = std::max(t.makespan, t.end[me]);
      for (int w = first_waiter[me]; w >= 0; w = next_waiter[w]) ready.push_back(w);
      first_waiter[me] = -1;
      ++pos[d];
    }
  }
  // Anything left is stuck: explain the first stuck device's wait.
  for (int d = 0; d < D; ++d) {
    if (pos[d] >= static_cast<int>(s.programs[d].size())) continue;
    ActionRef here{d, pos[d]};
    const Action& a = s.programs[d][pos[d]];
    ActionRef dep = index.ref(blocked_on[d]);
    const Action& da = index.action(blocked_on[d]);
    if (dep.device == d)
      throw ScheduleError(
          fmt::format("cycle at device {}, position {}: {} needs {}, which comes later on the "
                      "same device (position {})",
                      d, pos[d], to_string(a), to_string(da), dep.pos),
          program_excerpt(s, here));
    std::string chain = fmt::format("deadlock at device {}, position {}: {} waits for {} "
                                    "(device {}, position {})",
                                    d, pos[d], to_string(a), to_string(da), dep.device, dep.pos);
    // Follow the chain of waits a few hops so the message shows who blocks whom.
    std::vector<char> seen(D, 0);
    seen[d] = 1;
    int cur = dep.device;
    for (int hop = 0; hop < 4 && !seen[cur] && blocked_on[cur] >= 0; ++hop) {
      seen[cur] = 1;
      ActionRef nd = index.ref(blocked_on[cur]);
      chain += fmt::format(", but device {} is stuck at position {} ({}) waiting for {} "
                           "(device {}, position {})",
                           cur, pos[cur], to_string(s.programs[cur][pos[cur]]),
                           to_string(index.action(blocked_on[cur])), nd.device, nd.pos);
      cur = nd.device;
    }
    throw ScheduleError(chain + ": every device runs its list in order with blocking receives",
                        program_excerpt(s, here));
  }
  return t;
}

}  // namespace paci
