#include "sim/calibrate/calibration.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "schedules/files.h"

namespace paci {
namespace {

using nlohmann::json;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

double robust_mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  const double m = median(v);
  double sum = 0;
  size_t n = 0;
  for (double x : v)
    if (m > 0 ? (x <= kRobustBand * m && x * kRobustBand >= m) : x == m) sum += x, ++n;
  return n > 0 ? sum / n : m;
}

namespace {

constexpr int kPieces = 5;  // stage, embedding, attention half, MLP half, head
using Row = std::array<double, kPieces>;

// Least squares y = X beta over the pieces in `free` (the others fixed at 0), through the
// normal equations; false if the rows do not determine every free piece.
bool least_squares(const std::vector<Row>& X, const std::vector<double>& y, unsigned free, Row& beta) {
  int col[kPieces], n = 0;
  for (int i = 0; i < kPieces; ++i)
    if (free >> i & 1) col[n++] = i;
  double A[kPieces][kPieces + 1] = {};
  for (size_t r = 0; r < X.size(); ++r)
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) A[i][j] += X[r][col[i]] * X[r][col[j]];
      A[i][n] += X[r][col[i]] * y[r];
    }
  for (int c = 0; c < n; ++c) {
    int p = c;
    for (int r = c + 1; r < n; ++r)
      if (std::fabs(A[r][c]) > std::fabs(A[p][c])) p = r;
    if (std::fabs(A[p][c]) < 1e-9) return false;
    for (int k = 0; k <= n; ++k) std::swap(A[c][k], A[p][k]);
    for (int r = 0; r < n; ++r) {
      if (r == c) continue;
      double f = A[r][c] / A[c][c];
      for (int k = c; k <= n; ++k) A[r][k] -= f * A[c][k];
    }
  }
  beta.fill(0.0);
  for (int i = 0; i < n; ++i) beta[col[i]] = A[i][n] / A[i][i];
  return true;
}

// Non-negative least squares: no piece (the per-stage part, the embedding, a layer, the head)
// takes negative time or bytes. With as many rows as pieces the plain solution passes the
// measurement noise of the large pieces on to the small ones (a 3% noise on the tiny model's
// head made its layer cost negative), so: the plain least-squares fit if it is non-negative,
// else the best fit among those with some pieces fixed at 0 (all 2^4 subsets are tried: the
// exact NNLS solution). Throws if the rows do not determine every piece.
Row fit(const std::vector<Row>& rows, const std::vector<double>& y, const char* what) {
  // Runs that never split a block cannot tell the halves apart: fit the cost of a half of a
  // whole block (both halves in the attention column, the MLP column unused) and give it to both.
  bool separable = false;
  for (const Row& r : rows) separable = separable || r[2] != r[3];
  std::vector<Row> X = rows;
  if (!separable)
    for (Row& r : X) r[2] += r[3], r[3] = 0;
  const unsigned kAll = separable ? (1u << kPieces) - 1 : ((1u << kPieces) - 1) & ~(1u << 3);
  auto result = [&](Row b) {
    if (!separable) b[3] = b[2];
    return b;
  };
  Row beta;
  if (!least_squares(X, y, kAll, beta))
    throw CalibrationError(fmt::format(
        "calibration: the measured stages do not separate the per-stage part, the embedding, the "
        "blocks and the head for {} (measure stages of different compositions, e.g. the layouts E,L,H "
        "and E+L+H)", what));
  auto feasible = [](const Row& b) {
    for (double v : b)
      if (v < 0) return false;
    return true;
  };
  if (feasible(beta)) return result(beta);
  auto residual = [&](const Row& b) {
    double r2 = 0;
    for (size_t r = 0; r < X.size(); ++r) {
      double e = -y[r];
      for (int i = 0; i < kPieces; ++i) e += X[r][i] * b[i];
      r2 += e * e;
    }
    return r2;
  };
  Row best{};  // all zero: always feasible
  double best_r2 = residual(best);
  for (unsigned free = 1; free < kAll; ++free) {
    if (free & ~kAll) continue;
    Row b;
    if (least_squares(X, y, free, b) && feasible(b) && residual(b) < best_r2) best = b, best_r2 = residual(b);
  }
  return result(best);
}

Row row(const StageComposition& s) {
  return {1.0, s.embedding ? 1.0 : 0.0, static_cast<double>(s.attention_halves()),
          static_cast<double>(s.mlp_halves()), s.head ? 1.0 : 0.0};
}

}  // namespace

Calibration fit_calibration(const std::vector<CalibrationRun>& runs) {
  if (runs.empty()) throw CalibrationError("calibration: no measured runs");
  // Per kind: rows (compositions) and robust mean durations; sizes and OPT per stage.
  std::array<std::vector<Row>, 4> X;
  std::array<std::vector<double>, 4> y;
  std::vector<Row> size_rows;
  std::vector<double> act, params, workspace;
  double opt_num = 0, opt_den = 0;
  for (const CalibrationRun& run : runs) {
    const Trace& t = *run.trace;
    const int S = t.stages();
    if (static_cast<int>(run.stages.size()) != S || static_cast<int>(run.sizes.size()) != S)
      throw CalibrationError(fmt::format("calibration: {} stage compositions and {} sizes for a trace of {} stages",
                                         run.stages.size(), run.sizes.size(), S));
    std::array<std::vector<std::vector<double>>, 5> d;
    for (auto& k : d) k.assign(S, {});
    for (const TraceAction& a : t.actions)
      d[static_cast<int>(a.action.kind)][a.action.stage].push_back(a.end - a.start);
    for (int s = 0; s < S; ++s) {
      for (int k = 0; k < 4; ++k)
        if (!d[k][s].empty()) X[k].push_back(row(run.stages[s])), y[k].push_back(robust_mean(d[k][s]));
      size_rows.push_back(row(run.stages[s]));
      act.push_back(run.sizes[s].activation_bytes);
      params.push_back(run.sizes[s].params);
      workspace.push_back(run.sizes[s].workspace_bytes);
      if (!d[4][s].empty()) {
        opt_num += robust_mean(d[4][s]) * run.sizes[s].params;
        opt_den += run.sizes[s].params * run.sizes[s].params;
      }
    }
  }
  Calibration c;
  const Trace& t0 = *runs.front().trace;
  c.source = t0.cost;
  c.micro_batch = static_cast<int>(t0.samples_per_microbatch);
  c.seq_len = t0.samples_per_microbatch > 0 ? static_cast<int>(t0.tokens_per_microbatch / t0.samples_per_microbatch) : 0;
  PieceCost* pieces[kPieces] = {&c.stage, &c.embedding, &c.attention, &c.mlp, &c.head};
  std::array<double PieceCost::*, 4> field = {&PieceCost::f, &PieceCost::b, &PieceCost::i, &PieceCost::w};
  const char* names[4] = {"F", "B", "I", "W"};
  for (int k = 0; k < 4; ++k) {
    if (X[k].empty()) continue;  // no such action measured (no split backward, say)
    Row beta = fit(X[k], y[k], names[k]);
    for (int p = 0; p < kPieces; ++p) pieces[p]->*field[k] = beta[p];
  }
  // Without a split backward in the runs, B splits evenly into I and W.
  for (PieceCost* p : pieces) {
    if (X[2].empty() && X[3].empty()) p->i = p->w = p->b / 2;
    if (X[1].empty()) p->b = p->i + p->w;
  }
  Row a = fit(size_rows, act, "activation memory");
  Row n = fit(size_rows, params, "parameters");
  Row ws = fit(size_rows, workspace, "workspace memory");
  for (int p = 0; p < kPieces; ++p)
    pieces[p]->activation_bytes = a[p], pieces[p]->params = n[p], pieces[p]->workspace_bytes = ws[p];
  c.opt_seconds_per_param = opt_den > 0 ? opt_num / opt_den : 0;
  return c;
}

Schedule calibration_schedule(int S, int M, int N) {
  Schedule s;
  s.name = "calibration";
  s.spec = {1, S, M, N};
  s.accum = M;
  s.stage_device.assign(S, 0);
  s.programs.resize(1);
  auto& p = s.programs[0];
  for (int m = 0; m < M * N; ++m) {
    for (int st = 0; st < S; ++st) p.push_back(Fwd(st, m));
    if (m % 2 == 0) {
      for (int st = S - 1; st >= 0; --st) p.push_back(Bwd(st, m));
    } else {
      for (int st = S - 1; st >= 0; --st) p.push_back(BwdI(st, m));
      for (int st = S - 1; st >= 0; --st) p.push_back(BwdW(st, m));
    }
    if ((m + 1) % M == 0)
      for (int st = 0; st < S; ++st) p.push_back(Opt(st));
  }
  return s;
}

Schedule calibration_pipeline_schedule(int M, int N) {
  Schedule s;
  s.name = "calibration";
  s.spec = {2, 1, M, N};
  s.accum = M;
  s.stage_device = {0, 1};
  s.programs.resize(2);
  auto backward = [](std::vector<Action>& p, int st, int m) {
    if (m % 2 == 0) {
      p.push_back(Bwd(st, m));
    } else {
      p.push_back(BwdI(st, m));
      p.push_back(BwdW(st, m));
    }
  };
  constexpr int kAhead = 2;
  for (int n = 0; n < N; ++n) {
    const int m0 = n * M;
    auto &p0 = s.programs[0], &p1 = s.programs[1];
    for (int j = 0; j < std::min(kAhead, M); ++j) p0.push_back(Fwd(0, m0 + j));
    for (int j = 0; j < M; ++j) {
      if (j + kAhead < M) p0.push_back(Fwd(0, m0 + j + kAhead));
      backward(p0, 0, m0 + j);
      p1.push_back(Fwd(1, m0 + j));
      backward(p1, 1, m0 + j);
    }
    p0.push_back(Opt(0));
    p1.push_back(Opt(1));
  }
  return s;
}

namespace {

// One round's evidence for the contention term, per action kind: sum n (d - b) and sum n^2 b
// over the two-device run's actions of duration d, b the robust mean of the same stage's
// same-kind durations in the round's single-device run (actions without one, or with d / b
// beyond kRobustBand, are left out), n the other devices computing at the action's start.
struct ContentionSums {
  std::array<double, 6> num{}, den{};
};
ContentionSums contention_sums(const ContentionRound& r) {
  // The round's uncontended durations: per stage and kind, the robust mean alone.
  const int S = std::max(r.alone->stages(), r.together->stages());
  std::vector<std::array<std::vector<double>, 6>> d(std::max(0, S));
  for (const TraceAction& a : r.alone->actions) {
    const int k = static_cast<int>(a.action.kind);
    if (a.action.stage >= 0 && a.action.stage < S && k >= 0 && k < 6) d[a.action.stage][k].push_back(a.end - a.start);
  }
  std::vector<std::array<double, 6>> alone(d.size());
  for (size_t st = 0; st < d.size(); ++st)
    for (int k = 0; k < 6; ++k) alone[st][k] = robust_mean(d[st][k]);
  const Trace& t = *r.together;
  // Each device's actions by start time, to count the others computing at a start.
  std::vector<std::vector<const TraceAction*>> by_device(std::max(0, t.devices()));
  for (const TraceAction& a : t.actions)
    if (a.device >= 0 && a.device < t.devices() && a.end > a.start) by_device[a.device].push_back(&a);
  for (auto& v : by_device)
    std::sort(v.begin(), v.end(), [](const TraceAction* x, const TraceAction* y) { return x->start < y->start; });
  auto computing = [&](int device, double at) {  // does `device` compute at time `at`?
    const auto& v = by_device[device];
    auto it = std::upper_bound(v.begin(), v.end(), at, [](double x, const TraceAction* a) { return x < a->start; });
    return it != v.begin() && (*std::prev(it))->end > at;  // the last action started by `at`
  };
  ContentionSums out;
  for (int dev = 0; dev < t.devices(); ++dev)
    for (const TraceAction* a : by_device[dev]) {
      const int k = static_cast<int>(a->action.kind), st = a->action.stage;
      if (k < 0 || k >= 6 || st < 0 || st >= S) continue;
      const double b = alone[st][k], dur = a->end - a->start;
      if (!(b > 0) || dur > kRobustBand * b || dur * kRobustBand < b) continue;
      int n = 0;
      for (int o = 0; o < t.devices(); ++o) n += o != dev && computing(o, a->start);
      out.num[k] += n * (dur - b), out.den[k] += n * n * b;
    }
  return out;
}

}  // namespace

std::array<double, 6> fit_contention(const std::vector<ContentionRound>& rounds) {
  std::array<std::vector<double>, 6> per_round;  // per kind: the rounds that had it
  std::vector<double> pooled;                      // per round: over all its kinds
  for (const ContentionRound& r : rounds) {
    if (!r.together || !r.alone) continue;
    const ContentionSums s = contention_sums(r);
    double num = 0, den = 0;
    for (int k = 0; k < 6; ++k) {
      if (s.den[k] > 0) per_round[k].push_back(std::max(0.0, s.num[k] / s.den[k]));
      num += s.num[k], den += s.den[k];
    }
    if (den > 0) pooled.push_back(std::max(0.0, num / den));  // else nothing overlapped
  }
  std::array<double, 6> out{};
  for (int k = 0; k < 6; ++k)
    out[k] = !per_round[k].empty() ? median(per_round[k]) : pooled.empty() ? 0.0 : median(pooled);
  return out;
}

bool calibrated_for(const Calibration& c, const GptConfig& m, int B, int T) {
  // Depth needs no rescaling: a stage costs the sum of its pieces, whatever the layer count.
  return c.micro_batch == B && c.seq_len == T &&
         (c.channels == 0 || (c.channels == m.channels && c.heads == m.heads && c.vocab == m.vocab_size &&
                              c.tied == m.tied_embeddings));
}

double gemm_flops(GemmPiece piece, int channels, double tokens, int vocab) {
  const double C = channels;
  switch (piece) {
    case GemmPiece::kAttention:
      return tokens * 2 * (3 * C * C + C * C);
    case GemmPiece::kMlp:
      return tokens * 2 * (4 * C * C + 4 * C * C);
    case GemmPiece::kHead:
      break;
  }
  return tokens * 2 * C * static_cast<double>(vocab);
}

namespace {

const GemmTimes& gemm_times(const GemmPoint& p, GemmPiece piece) {
  return piece == GemmPiece::kAttention ? p.attention : piece == GemmPiece::kMlp ? p.mlp : p.head;
}
double gemm_pass(const GemmTimes& t, int pass) { return pass == 0 ? t.f : pass == 1 ? t.i : t.w; }

// The sorted distinct widths and token counts of a curve, and its points by (width, tokens)
// index; empty if the points are not a full grid.
struct GemmGrid {
  std::vector<int> widths, tokens;
  std::vector<const GemmPoint*> at;  // [w * tokens.size() + t]
};
GemmGrid gemm_grid(const GemmCurve& g) {
  GemmGrid grid;
  for (const GemmPoint& p : g.points) grid.widths.push_back(p.channels), grid.tokens.push_back(p.tokens);
  for (std::vector<int>* v : {&grid.widths, &grid.tokens}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  grid.at.assign(grid.widths.size() * grid.tokens.size(), nullptr);
  for (const GemmPoint& p : g.points) {
    const size_t w = std::lower_bound(grid.widths.begin(), grid.widths.end(), p.channels) - grid.widths.begin();
    const size_t t = std::lower_bound(grid.tokens.begin(), grid.tokens.end(), p.tokens) - grid.tokens.begin();
    const GemmPoint*& slot = grid.at[w * grid.tokens.size() + t];
    if (slot) return {};  // the same point twice
    slot = &p;
  }
  for (const GemmPoint* p : grid.at)
    if (!p) return {};  // a width without some token count
  return grid;
}

// Where x lies between the grid values: index lo and fraction u in log space towards lo + 1
// (u = 0 at or beyond either end: the nearest edge).
void bracket(const std::vector<int>& v, double x, size_t& lo, double& u) {
  u = 0;
  if (x <= v.front()) {
    lo = 0;
    return;
  }
  if (x >= v.back()) {
    lo = v.size() - 1;
    return;
  }
  lo = static_cast<size_t>(std::upper_bound(v.begin(), v.end(), x) - v.begin()) - 1;
  if (x == v[lo]) return;
  u = (std::log(x) - std::log(v[lo])) / (std::log(v[lo + 1]) - std::log(v[lo]));
}

}  // namespace

double gemm_seconds(const GemmCurve& g, GemmPiece piece, int pass, int channels, double tokens, int vocab) {
  if (g.empty()) throw CalibrationError("calibration: no GEMM curve measured");
  const GemmGrid grid = gemm_grid(g);
  if (grid.at.empty())
    throw CalibrationError("calibration: the GEMM curve's points are not a full grid (every width with every token "
                           "count once)");
  size_t a, b;
  double u, v;
  bracket(grid.widths, channels, a, u);
  bracket(grid.tokens, tokens, b, v);
  const size_t nt = grid.tokens.size();
  auto spf = [&](size_t w, size_t t) {  // seconds per FLOP at a grid point
    const GemmPoint& p = *grid.at[w * nt + t];
    return gemm_pass(gemm_times(p, piece), pass) / gemm_flops(piece, p.channels, p.tokens, g.vocab);
  };
  double e = (1 - u) * (1 - v) * spf(a, b);
  if (u > 0) e += u * (1 - v) * spf(a + 1, b);
  if (v > 0) e += (1 - u) * v * spf(a, b + 1);
  if (u > 0 && v > 0) e += u * v * spf(a + 1, b + 1);
  return e * gemm_flops(piece, channels, tokens, vocab);
}

Calibration rescale_calibration(const Calibration& c, const GptConfig& to, int B, int T) {
  if (c.channels <= 0)
    throw CalibrationError(fmt::format("calibration ({}) does not record its model's width: re-measure with "
                                       "`paci calibrate` to predict another model or micro-batch size", c.source));
  GptConfig from = to;
  from.layers = std::max(1, c.layers);
  from.channels = c.channels, from.heads = c.heads, from.vocab_size = from.padded_vocab = c.vocab;
  from.tied_embeddings = c.tied;
  from.seq_len = std::max(from.seq_len, c.seq_len);
  GptConfig dst = to;
  dst.seq_len = std::max(dst.seq_len, T);
  const double tok_from = static_cast<double>(c.micro_batch) * c.seq_len, tok_to = static_cast<double>(B) * T;
  // Units: 0 embedding, 1 attention (block 0), 2 MLP (block 0), last the head.
  const int units_from[4] = {0, 1, 2, 2 * from.layers + 1}, units_to[4] = {0, 1, 2, 2 * dst.layers + 1};
  const std::vector<UnitCost> act_from = exec_unit_costs(from, c.micro_batch, c.seq_len),
                              act_to = exec_unit_costs(dst, B, T);
  const bool curve = !c.gemm.empty();
  Calibration r = c;
  PieceCost* pieces[4] = {&r.embedding, &r.attention, &r.mlp, &r.head};
  const GemmPiece gemm_piece[4] = {GemmPiece::kAttention, GemmPiece::kAttention, GemmPiece::kMlp, GemmPiece::kHead};
  double PieceCost::*field[4] = {&PieceCost::f, &PieceCost::i, &PieceCost::w, &PieceCost::b};
  for (int p = 0; p < 4; ++p) {
    const UnitFlops a = unit_flops(from, units_from[p], c.seq_len), b = unit_flops(dst, units_to[p], T);
    // Passes 0 F, 1 I, 2 W, 3 B (= I + W).
    auto flops = [](const UnitFlops& u, int pass) {
      return pass == 0 ? u.forward() : pass == 1 ? u.input_grad() : pass == 2 ? u.weight_grad()
                                                                              : u.input_grad() + u.weight_grad();
    };
    // The work that is not a linear layer's GEMM, per token (width where unit_flops counts none).
    auto rest = [](const UnitFlops& u, int pass, double width) {
      auto one = [&](int k) {
        const double x = k == 0 ? u.attention + u.elementwise : k == 1 ? 2 * u.attention + u.elementwise : 0.0;
        return x > 0 ? x : width;
      };
      return pass == 3 ? one(1) + one(2) : one(pass);
    };
    auto ratio = [&](double x, double y) { return x > 0 ? (y * tok_to) / (x * tok_from) : 1.0; };
    PieceCost& q = *pieces[p];
    for (int k = 0; k < 4; ++k) {
      double& t = q.*field[k];
      if (!curve || p == 0) {  // by FLOPs (the embedding has no GEMM either way)
        t *= ratio(flops(a, k), flops(b, k));
        continue;
      }
      auto g = [&](int channels, double tokens, int vocab) {
        auto one = [&](int pass) { return gemm_seconds(c.gemm, gemm_piece[p], pass, channels, tokens, vocab); };
        return k == 3 ? one(1) + one(2) : one(k);
      };
      const double g_from = g(from.channels, tok_from, c.vocab), g_to = g(dst.channels, tok_to, dst.vocab_size);
      const double gemm = t > 0 ? std::min(t, g_from) : 0.0;
      t = (g_from > 0 ? gemm * g_to / g_from : 0.0) +
          (t - gemm) * ratio(rest(a, k, from.channels), rest(b, k, dst.channels));
    }
    const double act_a = act_from[units_from[p]].activation_bytes, act_b = act_to[units_to[p]].activation_bytes;
    if (act_a > 0) q.activation_bytes *= act_b / act_a;
    q.params = static_cast<double>(unit_parameters(dst, units_to[p], /*stored=*/true));
  }
  const double msg = (tok_to * dst.channels) / (tok_from * from.channels);
  for (double PieceCost::*f : {&PieceCost::f, &PieceCost::b, &PieceCost::i, &PieceCost::w,
                               &PieceCost::activation_bytes, &PieceCost::workspace_bytes})
    r.stage.*f *= msg;
  for (PieceCost* q : pieces) q->workspace_bytes *= msg;
  r.boundary_bytes *= msg;
  r.micro_batch = B, r.seq_len = T, r.layers = dst.layers;
  r.channels = dst.channels, r.heads = dst.heads, r.vocab = dst.vocab_size, r.tied = dst.tied_embeddings;
  r.source = excerpt(c.source + fmt::format(", rescaled by {} to {} B={} T={}",
                                            curve ? "measured GEMM times" : "FLOPs", describe(dst), B, T), 200);
  return r;
}

CostModel cost_for_partition(const Calibration& c, const std::vector<StageComposition>& stages) {
  CostModel m;
  m.contention = c.contention;
  m.preallocated_activations = true;  // paci's executor reserves its slots up front
  m.description = fmt::format("calibrated ({})", c.source);
  m.latency = c.latency;
  m.bandwidth = c.bandwidth;
  m.samples_per_microbatch = c.micro_batch;
  m.tokens_per_microbatch = static_cast<double>(c.micro_batch) * c.seq_len;
  m.memory_unit = "B";
  for (const StageComposition& s : stages) {
    auto sum = [&](double PieceCost::*f) {
      return std::max(0.0, c.stage.*f + (s.embedding ? c.embedding.*f : 0) + s.attention_halves() * c.attention.*f +
                               s.mlp_halves() * c.mlp.*f + (s.head ? c.head.*f : 0));
    };
    auto raw = [&](double PieceCost::*f) {
      return c.stage.*f + (s.embedding ? c.embedding.*f : 0) + s.attention_halves() * c.attention.*f +
             s.mlp_halves() * c.mlp.*f + (s.head ? c.head.*f : 0);
    };
    if (!(raw(&PieceCost::f) > 0) || !(raw(&PieceCost::b) > 0) || !std::isfinite(raw(&PieceCost::f)) ||
        !std::isfinite(raw(&PieceCost::b)))
      throw CalibrationError(fmt::format(
          "calibration ({}): a stage with {}{} layers{} would take F = {:.4g} s, B = {:.4g} s: a stage's costs "
          "must be finite and > 0 (re-measure with `paci calibrate`)", c.source, s.embedding ? "the embedding, " : "",
          s.blocks(), s.head ? ", the head" : "", raw(&PieceCost::f), raw(&PieceCost::b)));
    StageCost sc;
    sc.f = sum(&PieceCost::f);
    sc.b = sum(&PieceCost::b);
    sc.i = sum(&PieceCost::i);
    sc.w = sum(&PieceCost::w);
    const double params = sum(&PieceCost::params);
    sc.opt = c.opt_seconds_per_param * params;
    sc.activation_bytes = sum(&PieceCost::activation_bytes);
    sc.workspace_bytes = sum(&PieceCost::workspace_bytes);
    sc.freed_by_i = 0;
    sc.weight_bytes = params * c.bytes_per_param;
    sc.copy = c.bandwidth > 0 ? sc.weight_bytes / c.bandwidth : 0;  // a memcpy on this machine
    sc.grad_bytes = params * c.bytes_per_param;
    sc.optimizer_bytes = 2 * params * c.bytes_per_param;
    sc.send_bytes = s.head ? 0 : c.boundary_bytes;
    sc.grad_send_bytes = s.embedding ? 0 : c.boundary_bytes;
    m.stages.push_back(sc);
  }
  return m;
}

StageComposition composition_of(const StagePartition& p) {
  StageComposition c;
  c.embedding = p.has_embedding;
  c.layers = p.whole_layers();
  c.head = p.has_head;
  c.mlp_first = p.starts_with_mlp;
  c.attention_last = p.ends_with_attention;
  return c;
}

PieceCost Calibration::layer() const {
  PieceCost p;
  for (double PieceCost::*f : {&PieceCost::f, &PieceCost::b, &PieceCost::i, &PieceCost::w,
                               &PieceCost::activation_bytes, &PieceCost::params, &PieceCost::workspace_bytes})
    p.*f = attention.*f + mlp.*f;
  return p;
}

std::vector<StagePartition> balanced_partition(const Calibration& c, int S) {
  const int L = c.layers, U = 2 * L + 2;
  if (S < 1 || S > U)
    throw CalibrationError(fmt::format("{} stages for a model of {} layers: at most 2L + 2 = {} (the embedding, an "
                                       "attention and an MLP half per layer, the head: one unit each)", S, L, U));
  // The piece every stage pays (c.stage) adds the same to every stage: it changes neither
  // the slowest stage nor the sum-of-squares tie-break, so the units carry the rest.
  auto fb = [](const PieceCost& p) { return p.f + p.b; };
  std::vector<UnitCost> units(U);
  units[0].time = fb(c.embedding);
  for (int u = 1; u + 1 < U; ++u) units[u].time = fb(u % 2 ? c.attention : c.mlp);  // units 1, 3, ...: attention
  units[U - 1].time = fb(c.head);
  GptConfig shape;
  shape.layers = L;
  try {
    return partition_from_units(shape, min_max_partition(units, S));
  } catch (const std::invalid_argument& e) {
    throw CalibrationError(fmt::format("calibration ({}): {}", c.source, e.what()));
  }
}

std::vector<StageComposition> balanced_compositions(const Calibration& c, int S) {
  std::vector<StageComposition> out;
  for (const StagePartition& p : balanced_partition(c, S)) out.push_back(composition_of(p));
  return out;
}

bool is_calibration(std::string_view text) {
  return text.find("\"paci-calibration\"") != std::string_view::npos;
}

namespace {

json piece_json(const PieceCost& p) {
  return {{"f", p.f},           {"b", p.b}, {"i", p.i}, {"w", p.w}, {"activation_bytes", p.activation_bytes},
          {"params", p.params}, {"workspace_bytes", p.workspace_bytes}};
}

}  // namespace

std::string calibration_to_json(const Calibration& c) {
  json j;
  j["format"] = "paci-calibration";
  j["version"] = 3;
  j["source"] = c.source;
  j["micro_batch"] = c.micro_batch;
  j["seq_len"] = c.seq_len;
  j["layers"] = c.layers;
  if (c.channels > 0)
    j["model"] = {{"channels", c.channels}, {"heads", c.heads}, {"vocab", c.vocab}, {"tied", c.tied}};
  j["boundary_bytes"] = c.boundary_bytes;
  j["stage"] = piece_json(c.stage);
  j["embedding"] = piece_json(c.embedding);
  j["attention"] = piece_json(c.attention);
  j["mlp"] = piece_json(c.mlp);
  j["head"] = piece_json(c.head);
  j["opt_seconds_per_param"] = c.opt_seconds_per_param;
  j["latency"] = c.latency;
  j["bandwidth"] = c.bandwidth;
  j["bytes_per_param"] = c.bytes_per_param;
  for (int k = 0; k < 6; ++k) j["contention"][kContentionKinds[k]] = c.contention[k];
  if (!c.gemm.empty()) {
    json& g = j["gemm"];
    g["threads"] = 1;
    g["vocab"] = c.gemm.vocab;
    g["points"] = json::array();
    auto times = [](const GemmTimes& t) { return json{{"f", t.f}, {"i", t.i}, {"w", t.w}}; };
    for (const GemmPoint& p : c.gemm.points)
      g["points"].push_back({{"channels", p.channels}, {"tokens", p.tokens}, {"attention", times(p.attention)},
                             {"mlp", times(p.mlp)}, {"head", times(p.head)}});
  }
  j["note"] = "seconds and bytes per micro-batch of micro_batch x seq_len tokens; a stage costs the sum of "
              "its pieces (embedding on the first stage, head = final LayerNorm + LM head + loss on the last)";
  return j.dump(1) + "\n";
}

namespace {

// Largest magnitude of a calibrated cost or size: far above any real model (seconds, bytes,
// parameters), small enough that sums over a run stay finite.
constexpr double kMaxCalibrationValue = 1e18;

// The "gemm" object (version 3): see calibration.h.
GemmCurve gemm_curve_from_json(const json& g, const std::string& source) {
  if (!g.is_object()) throw CalibrationError(fmt::format("{}: \"gemm\" must be an object", source));
  auto integer = [&](const json& o, const char* key, const std::string& where, int64_t hi) {
    if (!o.contains(key) || !o.at(key).is_number_integer() || o.at(key).get<int64_t>() < 1 ||
        o.at(key).get<int64_t>() > hi)
      throw CalibrationError(fmt::format("{}: {}{} must be an integer in 1..{} (got {})", source, where, key, hi,
                                         o.contains(key) ? excerpt(o.at(key).dump()) : "nothing"));
    return static_cast<int>(o.at(key).get<int64_t>());
  };
  if (g.contains("threads") && (!g["threads"].is_number_integer() || g["threads"].get<int64_t>() != 1))
    throw CalibrationError(fmt::format("{}: gemm.threads must be 1 (GEMM times are single-threaded; got {})", source,
                                       excerpt(g["threads"].dump())));
  GemmCurve curve;
  curve.vocab = integer(g, "vocab", "gemm.", 1 << 30);
  if (!g.contains("points") || !g["points"].is_array() || g["points"].empty() ||
      g["points"].size() > static_cast<size_t>(kMaxGemmPoints))
    throw CalibrationError(fmt::format("{}: gemm.points must be an array of 1..{} points", source, kMaxGemmPoints));
  for (size_t k = 0; k < g["points"].size(); ++k) {
    const json& o = g["points"][k];
    const std::string where = fmt::format("gemm.points[{}].", k);
    if (!o.is_object()) throw CalibrationError(fmt::format("{}: {} must be an object", source, where.substr(0, where.size() - 1)));
    GemmPoint p;
    p.channels = integer(o, "channels", where, 1 << 20);
    p.tokens = integer(o, "tokens", where, 1 << 30);
    for (const auto& [key, dst] : {std::pair<const char*, GemmTimes*>{"attention", &p.attention},
                                   {"mlp", &p.mlp}, {"head", &p.head}}) {
      if (!o.contains(key) || !o.at(key).is_object())
        throw CalibrationError(fmt::format("{}: {}{} must be an object with \"f\", \"i\" and \"w\"", source, where, key));
      for (const auto& [pass, x] : {std::pair<const char*, double*>{"f", &dst->f}, {"i", &dst->i}, {"w", &dst->w}}) {
        const json& t = o.at(key);
        if (!t.contains(pass) || !t.at(pass).is_number() || !std::isfinite(t.at(pass).get<double>()) ||
            !(t.at(pass).get<double>() > 0) || t.at(pass).get<double>() > 1e6)
          throw CalibrationError(fmt::format("{}: {}{}.{} must be a number of seconds in (0, 1e6] (got {})", source,
                                             where, key, pass, t.contains(pass) ? excerpt(t.at(pass).dump()) : "nothing"));
        *x = t.at(pass).get<double>();
      }
    }
    curve.points.push_back(p);
  }
  // A full grid: as many points as widths x token counts, none twice.
  std::vector<int> widths, tokens;
  for (const GemmPoint& p : curve.points) widths.push_back(p.channels), tokens.push_back(p.tokens);
  for (std::vector<int>* v : {&widths, &tokens}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  for (size_t a = 0; a < curve.points.size(); ++a)
    for (size_t b = a + 1; b < curve.points.size(); ++b)
      if (curve.points[a].channels == curve.points[b].channels && curve.points[a].tokens == curve.points[b].tokens)
        throw CalibrationError(fmt::format("{}: gemm.points[{}] and [{}] are both width {}, {} tokens", source, a, b,
                                           curve.points[a].channels, curve.points[a].tokens));
  if (widths.size() * tokens.size() != curve.points.size())
    throw CalibrationError(fmt::format("{}: gemm.points must form a full grid (every width with every token count): "
                                       "{} widths x {} token counts but {} points", source, widths.size(),
                                       tokens.size(), curve.points.size()));
  return curve;
}

Calibration calibration_from_json_checked(std::string_view text, const std::string& source) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    throw CalibrationError(fmt::format("{}: not valid JSON (byte {})", source, e.byte));
  } catch (const json::exception&) {
    throw CalibrationError(fmt::format("{}: a number in the JSON is out of range (calibration values are "
                                       "finite numbers)", source));
  }
  if (!j.is_object() || !j.contains("format") || j["format"] != "paci-calibration")
    throw CalibrationError(fmt::format("{}: not a paci calibration (expected \"format\": \"paci-calibration\"; "
                                       "write one with `paci calibrate`)", source));
  if (!j.contains("version") || (j["version"] != 1 && j["version"] != 2 && j["version"] != 3))
    throw CalibrationError(fmt::format("{}: calibration version {} is not supported (this paci reads 1, 2 and 3)", source,
                                       j.contains("version") ? excerpt(j["version"].dump()) : "(none)"));
  // Fitted piece costs may be slightly negative (a stage's sum is clamped at 0); totals not.
  auto num = [&](const json& o, const char* key, const std::string& where, bool signed_ok = false) {
    if (!o.contains(key) || !o.at(key).is_number())
      throw CalibrationError(fmt::format("{}: {}\"{}\" must be a number", source, where, key));
    double v = o.at(key).get<double>();
    if (!std::isfinite(v) || (!signed_ok && v < 0) || std::fabs(v) > kMaxCalibrationValue)
      throw CalibrationError(fmt::format("{}: {}\"{}\" must be finite, {}and at most {:g} in magnitude (got {})",
                                         source, where, key, signed_ok ? "" : ">= 0 ", kMaxCalibrationValue, v));
    return v;
  };
  // An integer count in lo..hi (no float-to-int conversion of 2e9 or 1e12).
  auto count = [&](const char* key, int64_t lo, int64_t hi) {
    const json* v = j.contains(key) ? &j.at(key) : nullptr;
    int64_t x = 0;
    bool ok = false;
    if (v && v->is_number_unsigned()) {
      uint64_t u = v->get<uint64_t>();
      ok = u <= static_cast<uint64_t>(hi);
      x = ok ? static_cast<int64_t>(u) : 0;
    } else if (v && v->is_number_integer()) {
      x = v->get<int64_t>();
      ok = true;
    }
    if (!ok || x < lo || x > hi)
      throw CalibrationError(fmt::format("{}: \"{}\" must be an integer in {}..{} (got {})", source, key, lo, hi,
                                         v ? excerpt(v->dump()) : "nothing"));
    return static_cast<int>(x);
  };
  auto piece = [&](const char* key) {
    if (!j.contains(key) || !j.at(key).is_object())
      throw CalibrationError(fmt::format("{}: missing object \"{}\"", source, key));
    const json& o = j.at(key);
    std::string w = std::string(key) + ".";
    PieceCost p;
    p.f = num(o, "f", w, true), p.b = num(o, "b", w, true), p.i = num(o, "i", w, true), p.w = num(o, "w", w, true);
    p.activation_bytes = num(o, "activation_bytes", w, true);
    p.params = num(o, "params", w, true);
    if (o.contains("workspace_bytes")) p.workspace_bytes = num(o, "workspace_bytes", w, true);
    return p;
  };
  Calibration c;
  if (j.contains("source")) {
    if (!j["source"].is_string())
      throw CalibrationError(fmt::format("{}: \"source\" must be a string", source));
    c.source = excerpt(j["source"].get<std::string>(), 200);
  } else {
    c.source = source;
  }
  c.micro_batch = count("micro_batch", 1, kMaxCalibrationMicroBatch);
  c.seq_len = count("seq_len", 1, kMaxCalibrationSeqLen);
  c.layers = count("layers", 0, kMaxCalibrationLayers);
  if (j.contains("model")) {
    const json& m = j["model"];
    auto dim = [&](const char* key, int hi) {
      if (!m.is_object() || !m.contains(key) || !m[key].is_number_integer() || m[key].get<int64_t>() < 1 ||
          m[key].get<int64_t>() > hi)
        throw CalibrationError(fmt::format("{}: model.{} must be an integer in 1..{}", source, key, hi));
      return m[key].get<int>();
    };
    c.channels = dim("channels", 1 << 20);
    c.heads = dim("heads", 1 << 20);
    c.vocab = dim("vocab", 1 << 30);
    if (!m.contains("tied") || !m["tied"].is_boolean())
      throw CalibrationError(fmt::format("{}: model.tied must be true or false", source));
    c.tied = m["tied"].get<bool>();
  }
  c.boundary_bytes = num(j, "boundary_bytes", "");
  c.stage = piece("stage");
  c.embedding = piece("embedding");
  if (j["version"] == 1) {  // one piece per block: each half costs half of it
    const PieceCost l = piece("layer");
    for (double PieceCost::*f : {&PieceCost::f, &PieceCost::b, &PieceCost::i, &PieceCost::w,
                                 &PieceCost::activation_bytes, &PieceCost::params, &PieceCost::workspace_bytes})
      c.attention.*f = c.mlp.*f = l.*f / 2;
  } else {
    c.attention = piece("attention");
    c.mlp = piece("mlp");
  }
  c.head = piece("head");
  // Fitted pieces may be negative, but the whole model must cost something (stages are
  // checked again when a partition is built).
  const double whole_f = c.stage.f + c.embedding.f + c.layers * c.layer().f + c.head.f;
  const double whole_b = c.stage.b + c.embedding.b + c.layers * c.layer().b + c.head.b;
  if (!(whole_f > 0) || !(whole_b > 0))
    throw CalibrationError(fmt::format("{}: the whole model on one stage would take F = {} s, B = {} s: a "
                                       "calibration's costs must be > 0 (re-measure with `paci calibrate`)",
                                       source, whole_f, whole_b));
  c.opt_seconds_per_param = num(j, "opt_seconds_per_param", "");
  c.latency = num(j, "latency", "");
  c.bandwidth = num(j, "bandwidth", "");
  c.bytes_per_param = num(j, "bytes_per_param", "");
  if (j.contains("contention")) {
    if (!j["contention"].is_object()) throw CalibrationError(fmt::format("{}: \"contention\" must be an object", source));
    for (int k = 0; k < 6; ++k)
      if (j["contention"].contains(kContentionKinds[k])) {
        c.contention[k] = num(j["contention"], kContentionKinds[k], "contention.");
        if (c.contention[k] > 100)
          throw CalibrationError(fmt::format("{}: contention.{} must be in 0..100 (got {})", source,
                                             kContentionKinds[k], c.contention[k]));
      }
  }
  if (j.contains("gemm")) c.gemm = gemm_curve_from_json(j["gemm"], source);
  return c;
}

}  // namespace

Calibration calibration_from_json(std::string_view text, const std::string& source) {
  try {
    return calibration_from_json_checked(text, source);
  } catch (const json::exception& e) {
    // Every access above checks its type; kept so that no nlohmann error escapes.
    throw CalibrationError(fmt::format("{}: wrong type in the calibration (nlohmann error {})", source, e.id));
  }
}

}  // namespace paci
