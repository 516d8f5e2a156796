#include "sim/calibrate/calibration.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace paci {
namespace {

using nlohmann::json;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

constexpr int kPieces = 4;  // stage, embedding, layer, head
using Row = std::array<double, kPieces>;

// Least squares y = X beta through the normal equations; throws if the rows do not
// determine every piece.
Row fit(const std::vector<Row>& X, const std::vector<double>& y, const char* what) {
  double A[kPieces][kPieces + 1] = {};
  for (size_t r = 0; r < X.size(); ++r)
    for (int i = 0; i < kPieces; ++i) {
      for (int j = 0; j < kPieces; ++j) A[i][j] += X[r][i] * X[r][j];
      A[i][kPieces] += X[r][i] * y[r];
    }
  for (int c = 0; c < kPieces; ++c) {
    int p = c;
    for (int r = c + 1; r < kPieces; ++r)
      if (std::fabs(A[r][c]) > std::fabs(A[p][c])) p = r;
    if (std::fabs(A[p][c]) < 1e-9)
      throw CalibrationError(fmt::format(
          "calibration: the measured stages do not separate the per-stage part, the embedding, the "
          "layers and the head for {} (measure stages of different compositions, e.g. layers 0,L,0 and "
          "all layers on one stage)", what));
    for (int k = 0; k <= kPieces; ++k) std::swap(A[c][k], A[p][k]);
    for (int r = 0; r < kPieces; ++r) {
      if (r == c) continue;
      double f = A[r][c] / A[c][c];
      for (int k = c; k <= kPieces; ++k) A[r][k] -= f * A[c][k];
    }
  }
  Row beta;
  for (int i = 0; i < kPieces; ++i) beta[i] = A[i][kPieces] / A[i][i];
  return beta;
}

Row row(const StageComposition& s) {
  return {1.0, s.embedding ? 1.0 : 0.0, static_cast<double>(s.layers), s.head ? 1.0 : 0.0};
}

}  // namespace

Calibration fit_calibration(const std::vector<CalibrationRun>& runs) {
  if (runs.empty()) throw CalibrationError("calibration: no measured runs");
  // Per kind: rows (compositions) and median durations; sizes and OPT per stage.
  std::array<std::vector<Row>, 4> X;
  std::array<std::vector<double>, 4> y;
  std::vector<Row> size_rows;
  std::vector<double> act, params;
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
        if (!d[k][s].empty()) X[k].push_back(row(run.stages[s])), y[k].push_back(median(d[k][s]));
      size_rows.push_back(row(run.stages[s]));
      act.push_back(run.sizes[s].activation_bytes);
      params.push_back(run.sizes[s].params);
      if (!d[4][s].empty()) {
        opt_num += median(d[4][s]) * run.sizes[s].params;
        opt_den += run.sizes[s].params * run.sizes[s].params;
      }
    }
  }
  Calibration c;
  const Trace& t0 = *runs.front().trace;
  c.source = t0.cost;
  c.micro_batch = static_cast<int>(t0.samples_per_microbatch);
  c.seq_len = t0.samples_per_microbatch > 0 ? static_cast<int>(t0.tokens_per_microbatch / t0.samples_per_microbatch) : 0;
  PieceCost* pieces[kPieces] = {&c.stage, &c.embedding, &c.layer, &c.head};
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
  for (int p = 0; p < kPieces; ++p) pieces[p]->activation_bytes = a[p], pieces[p]->params = n[p];
  c.opt_seconds_per_param = opt_den > 0 ? opt_num / opt_den : 0;
  return c;
}

CostModel cost_for_partition(const Calibration& c, const std::vector<StageComposition>& stages) {
  CostModel m;
  m.description = fmt::format("calibrated ({})", c.source);
  m.latency = c.latency;
  m.bandwidth = c.bandwidth;
  m.samples_per_microbatch = c.micro_batch;
  m.tokens_per_microbatch = static_cast<double>(c.micro_batch) * c.seq_len;
  m.memory_unit = "B";
  for (const StageComposition& s : stages) {
    auto sum = [&](double PieceCost::*f) {
      return std::max(0.0, c.stage.*f + (s.embedding ? c.embedding.*f : 0) + s.layers * c.layer.*f +
                               (s.head ? c.head.*f : 0));
    };
    StageCost sc;
    sc.f = sum(&PieceCost::f);
    sc.b = sum(&PieceCost::b);
    sc.i = sum(&PieceCost::i);
    sc.w = sum(&PieceCost::w);
    const double params = sum(&PieceCost::params);
    sc.opt = c.opt_seconds_per_param * params;
    sc.activation_bytes = sum(&PieceCost::activation_bytes);
    sc.freed_by_i = 0;
    sc.weight_bytes = params * c.bytes_per_param;
    sc.grad_bytes = params * c.bytes_per_param;
    sc.optimizer_bytes = 2 * params * c.bytes_per_param;
    sc.send_bytes = s.head ? 0 : c.boundary_bytes;
    sc.grad_send_bytes = s.embedding ? 0 : c.boundary_bytes;
    m.stages.push_back(sc);
  }
  return m;
}

std::vector<StageComposition> balanced_compositions(const Calibration& c, int S) {
  const int L = c.layers;
  if (S < 1 || S > L + 1)
    throw CalibrationError(fmt::format("{} stages for a model of {} layers: at most layers + 1 (the last may hold "
                                       "only the head)", S, L));
  // Binary search on the largest stage cost; greedy packing decides feasibility.
  auto cost = [&](const StageComposition& s) {
    auto part = [&](const PieceCost& p) { return p.f + p.b; };
    return part(c.stage) + (s.embedding ? part(c.embedding) : 0) + s.layers * part(c.layer) +
           (s.head ? part(c.head) : 0);
  };
  auto pack = [&](double cap, std::vector<StageComposition>* out) {
    std::vector<StageComposition> st;
    StageComposition cur{true, 0, false};
    for (int l = 0; l < L; ++l) {
      StageComposition next = cur;
      ++next.layers;
      if (cost(next) > cap && (cur.layers > 0 || cur.embedding)) {
        st.push_back(cur);
        cur = {false, 1, false};
      } else {
        cur = next;
      }
    }
    StageComposition with_head = cur;
    with_head.head = true;
    if (cost(with_head) <= cap || cur.layers == 0) {
      st.push_back(with_head);
    } else {
      st.push_back(cur);
      st.push_back({false, 0, true});
    }
    if (out) *out = st;
    return static_cast<int>(st.size()) <= S;
  };
  double lo = 0, hi = cost({true, L, true});
  for (int it = 0; it < 100; ++it) {
    double mid = 0.5 * (lo + hi);
    (pack(mid, nullptr) ? hi : lo) = mid;
  }
  std::vector<StageComposition> st;
  pack(hi, &st);
  // Fewer stages than asked: split the largest layer groups until there are S.
  while (static_cast<int>(st.size()) < S) {
    auto it = std::max_element(st.begin(), st.end(), [](const auto& a, const auto& b) { return a.layers < b.layers; });
    if (it->layers < 2) {
      if (it->head && it->layers == 1) {
        it->head = false;
        st.push_back({false, 0, true});
        continue;
      }
      break;
    }
    StageComposition second{false, it->layers / 2, it->head};
    it->layers -= second.layers;
    it->head = false;
    st.insert(it + 1, second);
  }
  if (static_cast<int>(st.size()) != S)
    throw CalibrationError(fmt::format("cannot split {} layers into {} stages", L, S));
  return st;
}

bool is_calibration(std::string_view text) {
  return text.find("\"paci-calibration\"") != std::string_view::npos;
}

namespace {

json piece_json(const PieceCost& p) {
  return {{"f", p.f}, {"b", p.b}, {"i", p.i}, {"w", p.w}, {"activation_bytes", p.activation_bytes}, {"params", p.params}};
}

}  // namespace

std::string calibration_to_json(const Calibration& c) {
  json j;
  j["format"] = "paci-calibration";
  j["version"] = 1;
  j["source"] = c.source;
  j["micro_batch"] = c.micro_batch;
  j["seq_len"] = c.seq_len;
  j["layers"] = c.layers;
  j["boundary_bytes"] = c.boundary_bytes;
  j["stage"] = piece_json(c.stage);
  j["embedding"] = piece_json(c.embedding);
  j["layer"] = piece_json(c.layer);
  j["head"] = piece_json(c.head);
  j["opt_seconds_per_param"] = c.opt_seconds_per_param;
  j["latency"] = c.latency;
  j["bandwidth"] = c.bandwidth;
  j["bytes_per_param"] = c.bytes_per_param;
  j["note"] = "seconds and bytes per micro-batch of micro_batch x seq_len tokens; a stage costs the sum of "
              "its pieces (embedding on the first stage, head = final LayerNorm + LM head + loss on the last)";
  return j.dump(1) + "\n";
}

Calibration calibration_from_json(std::string_view text, const std::string& source) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    throw CalibrationError(fmt::format("{}: not valid JSON (byte {})", source, e.byte));
  }
  if (!j.is_object() || j.value("format", "") != "paci-calibration")
    throw CalibrationError(fmt::format("{}: not a paci calibration (expected \"format\": \"paci-calibration\"; "
                                       "write one with `paci calibrate`)", source));
  if (j.value("version", 0) != 1)
    throw CalibrationError(fmt::format("{}: calibration version {} is not supported (this paci reads 1)", source,
                                       j.value("version", 0)));
  // Fitted piece costs may be slightly negative (a stage's sum is clamped at 0); totals not.
  auto num = [&](const json& o, const char* key, const std::string& where, bool signed_ok = false) {
    if (!o.contains(key) || !o.at(key).is_number())
      throw CalibrationError(fmt::format("{}: {}\"{}\" must be a number", source, where, key));
    double v = o.at(key).get<double>();
    if (!std::isfinite(v) || (!signed_ok && v < 0))
      throw CalibrationError(fmt::format("{}: {}\"{}\" must be finite and >= 0 (got {})", source, where, key, v));
    return v;
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
    return p;
  };
  Calibration c;
  c.source = j.value("source", source);
  c.micro_batch = static_cast<int>(num(j, "micro_batch", ""));
  c.seq_len = static_cast<int>(num(j, "seq_len", ""));
  c.layers = static_cast<int>(num(j, "layers", ""));
  c.boundary_bytes = num(j, "boundary_bytes", "");
  c.stage = piece("stage");
  c.embedding = piece("embedding");
  c.layer = piece("layer");
  c.head = piece("head");
  c.opt_seconds_per_param = num(j, "opt_seconds_per_param", "");
  c.latency = num(j, "latency", "");
  c.bandwidth = num(j, "bandwidth", "");
  c.bytes_per_param = num(j, "bytes_per_param", "");
  return c;
}

}  // namespace paci
