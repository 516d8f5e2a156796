// Calibration: a synthetic trace with known per-piece durations is recovered exactly; the
// calibration read back from JSON predicts the same as the one written; the calibration
// schedule validates.
#include <array>
#include <cmath>
#include <functional>

#include <nlohmann/json.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "schedules/gen/generators.h"
#include "schedules/validate.h"
#include "sim/calibrate/calibration.h"
#include "sim/simulator.h"

namespace paci {
namespace {

// Durations per piece and kind (seconds): the truth the fit must recover.
struct Truth {
  double stage[4] = {0.001, 0.002, 0.0015, 0.0005};  // F, B, I, W
  double emb[4] = {0.0005, 0.0004, 0.0003, 0.0001};
  double attn[4] = {0.004, 0.008, 0.005, 0.003};  // the two halves of a block differ
  double mlp[4] = {0.006, 0.012, 0.007, 0.005};
  double head[4] = {0.030, 0.050, 0.030, 0.020};
  double layer(int k) const { return attn[k] + mlp[k]; }
  double cost(const StageComposition& s, int k) const {
    return stage[k] + (s.embedding ? emb[k] : 0) + s.attention_halves() * attn[k] + s.mlp_halves() * mlp[k] +
           (s.head ? head[k] : 0);
  }
};

StageComposition comp(bool e, int layers, bool h, bool mlp_first = false, bool attention_last = false) {
  StageComposition c;
  c.embedding = e, c.layers = layers, c.head = h, c.mlp_first = mlp_first, c.attention_last = attention_last;
  return c;
}

// A trace of one device running the given stages: every (stage, kind) appears a few times
// with the true duration (and the robust mean must ignore one outlier each).
Trace synthetic_trace(const std::vector<StageComposition>& comp, const Truth& truth) {
  Trace t;
  const int S = static_cast<int>(comp.size());
  t.spec = {1, S, 4, 1};
  t.stage_device.assign(S, 0);
  t.static_memory.resize(1);
  t.samples_per_microbatch = 2;
  t.tokens_per_microbatch = 32;
  double now = 0;
  const ActionKind kinds[4] = {ActionKind::F, ActionKind::B, ActionKind::I, ActionKind::W};
  for (int s = 0; s < S; ++s)
    for (int k = 0; k < 4; ++k)
      for (int rep = 0; rep < 5; ++rep) {
        TraceAction a;
        a.action = {kinds[k], s, rep};
        a.start = now;
        double d = truth.cost(comp[s], k) * (rep == 4 ? 3.0 : 1.0);  // one outlier
        a.end = now + d;
        now = a.end;
        t.actions.push_back(a);
      }
  return t;
}

// Durations from a machine that is fast 40% of the time and 1.8x slower the rest: the robust
// mean is their mean (what a sum of them sees), where the median would be the slow value; a
// value beyond 2.5x the median either way is an outlier and left out.
TEST(Calibration, RobustMeanIsTheMeanOfASharedMachinesSpells) {
  std::vector<double> v;
  for (int k = 0; k < 40; ++k) v.push_back(1.0);
  for (int k = 0; k < 60; ++k) v.push_back(1.8);
  EXPECT_NEAR(robust_mean(v), 0.4 * 1.0 + 0.6 * 1.8, 1e-12);
  v.push_back(100.0);  // a preemption
  v.push_back(0.1);    // a clock glitch
  EXPECT_NEAR(robust_mean(v), 0.4 * 1.0 + 0.6 * 1.8, 1e-12);
  EXPECT_EQ(robust_mean({}), 0.0);
  EXPECT_EQ(robust_mean({0.0, 0.0, 5.0}), 0.0);
}

TEST(Calibration, RecoversKnownPieceDurations) {
  Truth truth;
  // The calibration's runs: E,4,H; E+4+H; and E+0.5,3.5+H (block 0 split between its halves).
  std::vector<StageComposition> three = {comp(true, 0, false), comp(false, 4, false), comp(false, 0, true)};
  std::vector<StageComposition> one = {comp(true, 4, true)};
  std::vector<StageComposition> split = {comp(true, 0, false, false, true), comp(false, 3, true, true, false)};
  Trace a = synthetic_trace(three, truth), b = synthetic_trace(one, truth), d = synthetic_trace(split, truth);
  std::vector<StageSizes> sa = {{100, 10}, {1000, 400}, {300, 50}}, sb = {{1300, 460}}, sd = {{170, 35}, {1180, 425}};
  Calibration c = fit_calibration({{&a, three, sa}, {&b, one, sb}, {&d, split, sd}});
  const PieceCost* got[5] = {&c.stage, &c.embedding, &c.attention, &c.mlp, &c.head};
  const double* want[5] = {truth.stage, truth.emb, truth.attn, truth.mlp, truth.head};
  double PieceCost::*field[4] = {&PieceCost::f, &PieceCost::b, &PieceCost::i, &PieceCost::w};
  // Exact linear algebra on exact means: only rounding error (1e-12 s) is allowed.
  for (int p = 0; p < 5; ++p)
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(got[p]->*field[k], want[p][k], 1e-12) << "piece " << p << " kind " << k;
  EXPECT_EQ(c.micro_batch, 2);
  EXPECT_EQ(c.seq_len, 16);
  // Sizes: 100 = s+e, 1000 = s+4(a+m), 300 = s+h, 1300 = s+e+4(a+m)+h, 170 = s+e+a,
  // 1180 = s+3a+4m+h  =>  s = 50, e = 50, a = 70, m = 167.5, h = 250 (least squares, consistent).
  EXPECT_NEAR(c.stage.activation_bytes, 50, 1e-9);
  EXPECT_NEAR(c.attention.activation_bytes, 70, 1e-9);
  EXPECT_NEAR(c.mlp.activation_bytes, 167.5, 1e-9);
  EXPECT_NEAR(c.layer().activation_bytes, 237.5, 1e-9);
  // The cost model of another partition is the sum of its pieces, split blocks included.
  const StageComposition x = comp(true, 1, false, false, true), y = comp(false, 2, true, true, false);
  CostModel m = cost_for_partition(c, {x, y});
  EXPECT_NEAR(m.stages[0].f, truth.cost(x, 0), 1e-12);
  EXPECT_NEAR(m.stages[1].b, truth.cost(y, 1), 1e-12);
}

// Runs that never split a block (and version-1 files) cannot tell the halves apart: each half
// gets half of the fitted layer, and whole blocks are still exact.
TEST(Calibration, WithoutASplitRunTheHalvesShareTheLayer) {
  Truth truth;
  std::vector<StageComposition> three = {comp(true, 0, false), comp(false, 4, false), comp(false, 0, true)};
  std::vector<StageComposition> one = {comp(true, 4, true)};
  Trace a = synthetic_trace(three, truth), b = synthetic_trace(one, truth);
  Calibration c = fit_calibration({{&a, three, {{100, 10}, {1000, 400}, {300, 50}}}, {&b, one, {{1300, 460}}}});
  for (int k = 0; k < 4; ++k) {
    double PieceCost::*f = std::array<double PieceCost::*, 4>{&PieceCost::f, &PieceCost::b, &PieceCost::i,
                                                               &PieceCost::w}[k];
    EXPECT_NEAR(c.attention.*f, truth.layer(k) / 2, 1e-12);
    EXPECT_NEAR(c.mlp.*f, truth.layer(k) / 2, 1e-12);
  }
  // A version-1 file (one "layer" piece) reads the same way.
  std::string v1 = calibration_to_json(c);
  const size_t at = v1.find("\"attention\"");
  ASSERT_NE(at, std::string::npos);
  nlohmann::json j = nlohmann::json::parse(v1);
  j["version"] = 1;
  j["layer"] = j["attention"];
  for (auto& [key, v] : j["layer"].items()) v = 2 * v.get<double>();
  j.erase("attention");
  j.erase("mlp");
  Calibration old = calibration_from_json(j.dump(), "v1.json");
  EXPECT_NEAR(old.attention.f, c.attention.f, 1e-15);
  EXPECT_NEAR(old.mlp.b, c.mlp.b, 1e-15);
}

// The tiny model's case: a head 30x a layer, measured 3% slow in the whole-model run. The
// exact solve makes the per-stage part and so the layer negative; the fit keeps every piece
// >= 0 (non-negative least squares) and stays close to the truth.
TEST(Calibration, NoiseNeverMakesAPieceNegative) {
  Truth truth;
  for (double& x : truth.stage) x = 0.0001;
  for (double& x : truth.attn) x *= 0.1;  // 1 ms F per layer, 2 layers; head 30 ms
  for (double& x : truth.mlp) x *= 0.1;
  std::vector<StageComposition> three = {comp(true, 0, false), comp(false, 2, false), comp(false, 0, true)};
  std::vector<StageComposition> one = {comp(true, 2, true)};
  Trace a = synthetic_trace(three, truth);
  Truth slow = truth;
  for (double& x : slow.head) x *= 1.03;
  Trace b = synthetic_trace(one, slow);
  std::vector<StageSizes> sa = {{100, 10}, {1000, 400}, {300, 50}}, sb = {{1400, 460}};
  Calibration c = fit_calibration({{&a, three, sa}, {&b, one, sb}});
  for (const PieceCost* p : {&c.stage, &c.embedding, &c.attention, &c.mlp, &c.head})
    for (double PieceCost::*f : {&PieceCost::f, &PieceCost::b, &PieceCost::i, &PieceCost::w})
      EXPECT_GE(p->*f, 0.0);
  EXPECT_GT(c.layer().f, 0.0);
  // Within 1 ms of the truth on the layer (the head's 0.9 ms of noise has to go somewhere).
  EXPECT_NEAR(c.layer().f, truth.layer(0), 1e-3);
  EXPECT_NEAR(c.head.f, truth.head[0], 1.5e-3);
}

TEST(Calibration, StagesThatDoNotSeparateThePiecesAreRefused) {
  Truth truth;
  std::vector<StageComposition> two = {comp(true, 2, false), comp(false, 2, true)};
  Trace a = synthetic_trace(two, truth);
  try {
    fit_calibration({{&a, two, {{1, 1}, {1, 1}}}});
    FAIL() << "accepted";
  } catch (const CalibrationError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("do not separate"));
  }
}

TEST(Calibration, JsonRoundTripPredictsTheSame) {
  Truth truth;
  std::vector<StageComposition> three = {comp(true, 0, false), comp(false, 3, false), comp(false, 0, true)};
  std::vector<StageComposition> one = {comp(true, 3, true)};
  std::vector<StageComposition> split = {comp(true, 0, false, false, true), comp(false, 2, true, true, false)};
  Trace a = synthetic_trace(three, truth), b = synthetic_trace(one, truth), d = synthetic_trace(split, truth);
  Calibration c = fit_calibration(
      {{&a, three, {{1, 1}, {9, 8}, {3, 2}}}, {&b, one, {{12, 10}}}, {&d, split, {{2, 2}, {11, 9}}}});
  c.latency = 1e-5;
  c.bandwidth = 1e10;
  c.boundary_bytes = 4096;
  Calibration back = calibration_from_json(calibration_to_json(c), "mem.json");
  Schedule s = gen_1f1b(2, 4, 3);
  std::vector<StageComposition> part = {comp(true, 1, false, false, true), comp(false, 1, true, true, false)};
  SimResult x = simulate(s, cost_for_partition(c, part)), y = simulate(s, cost_for_partition(back, part));
  ASSERT_EQ(x.trace.actions.size(), y.trace.actions.size());
  for (size_t i = 0; i < x.trace.actions.size(); ++i) {
    EXPECT_DOUBLE_EQ(x.trace.actions[i].start, y.trace.actions[i].start);
    EXPECT_DOUBLE_EQ(x.trace.actions[i].end, y.trace.actions[i].end);
  }
}

// Rounds of a two-device run whose every action is slowed by (1 + s_k x n), n the other
// devices computing at its start (the simulator's contention term, so the simulator makes the
// synthetic runs), each paired with the same stages alone on one device (the calibration's own
// single-device schedule): the fit recovers each
// s_k to rounding; a kind that never starts while another device computes gets the pooled
// value; one preempted action (3x its time) and one round in a slow spell of the machine
// (every action of its two-device run 30% slower) are left out; alone runs faster than the
// pair (noise) give 0, and a round without overlap measures nothing.
TEST(Calibration, ContentionIsRecoveredFromRunsWithAKnownSlowdown) {
  CostModel base;
  base.stages.resize(2);
  base.stages[0].f = 0.011, base.stages[0].b = 0.023, base.stages[0].i = 0.013, base.stages[0].w = 0.009;
  base.stages[1].f = 0.017, base.stages[1].b = 0.029, base.stages[1].i = 0.019, base.stages[1].w = 0.007;
  base.stages[0].opt = 0.0031, base.stages[1].opt = 0.0047;
  // Transfers take time, so that no two actions start at the same instant: the simulator
  // counts the one that happens to start first as busy for the other, a measured trace has
  // no such ties.
  base.latency = 0.0013;
  const std::array<double, 6> s = {0.3, 0.1, 0.2, 0.0, 0.05, 0.0};
  CostModel slow = base;
  slow.contention = s;
  const Trace alone = simulate(calibration_schedule(2, 4, 1), slow).trace;  // one device: no contention
  // 1F1B gives F, B and OPT; ZB-H1 gives F, I, W and OPT.
  Trace a = simulate(gen_1f1b(2, 8, 2), slow).trace, b = simulate(gen_zb_h1(2, 8, 2), slow).trace;
  std::array<double, 6> got = fit_contention({{&a, &alone}, {&b, &alone}});
  for (int k = 0; k < 5; ++k) EXPECT_NEAR(got[k], s[k], 1e-9) << kContentionKinds[k];
  EXPECT_GT(got[5], 0.0);  // FB: not in the runs, so the pooled value of the others
  // A preempted action does not move the fit, nor does a round in a slow spell.
  Trace preempted = a, spell = a;
  for (TraceAction& x : preempted.actions)
    if (x.action.kind == ActionKind::F && x.device == 1 && x.action.mb == 3) x.end = x.start + 3 * (x.end - x.start);
  for (TraceAction& x : spell.actions) x.start *= 1.3, x.end *= 1.3;
  got = fit_contention({{&preempted, &alone}, {&a, &alone}, {&spell, &alone}, {&b, &alone}});
  for (int k = 0; k < 5; ++k) EXPECT_NEAR(got[k], s[k], 1e-9) << kContentionKinds[k];
  // (The spell alone would have moved it.)
  EXPECT_GT(fit_contention({{&spell, &alone}})[0], s[0] + 0.2);
  // Faster than alone (noise) is no contention; a round without overlap measures nothing.
  CostModel twice = base;
  for (StageCost& st : twice.stages)
    for (double* x : {&st.f, &st.b, &st.i, &st.w, &st.opt}) *x *= 2;
  const Trace slower = simulate(calibration_schedule(2, 4, 1), twice).trace;
  for (double x : fit_contention({{&a, &slower}, {&b, &slower}})) EXPECT_EQ(x, 0.0);
  for (double x : fit_contention({{&alone, &alone}})) EXPECT_EQ(x, 0.0);
  // The fitted term is what the calibration's cost model and its file carry.
  std::vector<StageComposition> one = {comp(true, 4, true)};
  Calibration c;
  c.layers = 4;
  c.attention.f = c.mlp.f = 1, c.attention.b = c.mlp.b = 2;
  c.contention = s;
  EXPECT_EQ(cost_for_partition(c, one).contention, s);
  const Calibration back = calibration_from_json(calibration_to_json(c), "c.json");
  EXPECT_EQ(back.contention, s);
}

TEST(Calibration, MalformedFilesGiveClearErrors) {
  EXPECT_THROW(calibration_from_json("{", "c.json"), CalibrationError);
  EXPECT_THROW(calibration_from_json("{\"format\":\"paci-cost\"}", "c.json"), CalibrationError);
  try {
    calibration_from_json("{\"format\":\"paci-calibration\",\"version\":1,\"micro_batch\":-1}", "c.json");
    FAIL();
  } catch (const CalibrationError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("c.json: \"micro_batch\" must be an integer in 1.."));
  }
}

}  // namespace
}  // namespace paci

namespace paci {
namespace {

TEST(Calibration, BalancedCompositionsCoverTheModel) {
  Calibration c;
  c.layers = 6;
  c.attention.f = c.mlp.f = 0.5, c.attention.b = c.mlp.b = 1;
  c.head.f = 3, c.head.b = 6;  // the head costs three layers
  c.embedding.f = 0.1;
  for (int S = 1; S <= 14; ++S) {  // 2L + 2 units: one per stage at most
    std::vector<StageComposition> st = balanced_compositions(c, S);
    ASSERT_EQ(static_cast<int>(st.size()), S);
    double blocks = 0;
    for (const auto& s : st) blocks += s.blocks();
    EXPECT_EQ(blocks, 6) << S;
    EXPECT_TRUE(st.front().embedding);
    EXPECT_TRUE(st.back().head);
  }
  // Two stages: the head (3 layer-equivalents) goes with 1.5 layers (half a block split
  // off the fourth), 4.5 before it: 13.5 and 13.5 + the embedding.
  std::vector<StageComposition> two = balanced_compositions(c, 2);
  EXPECT_EQ(two[0].blocks(), 4.5);
  EXPECT_EQ(two[1].blocks(), 1.5);
  EXPECT_EQ(two[0].halves(), 1);
  EXPECT_EQ(format_layout(balanced_partition(c, 2)), "E+4.5,1.5+H");
  // Here both halves cost half a layer.
  const CostModel m = cost_for_partition(c, two);
  EXPECT_DOUBLE_EQ(m.stages[0].f, 0.1 + 4.5 * 1);
  EXPECT_DOUBLE_EQ(m.stages[1].f, 1.5 * 1 + 3);
  // Eight stages (more than layers + 1): some hold half a block.
  const auto eight = balanced_compositions(c, 8);
  EXPECT_EQ(eight.size(), 8u);
  EXPECT_THROW(balanced_compositions(c, 15), CalibrationError);
  EXPECT_TRUE(is_calibration(calibration_to_json(c)));
  EXPECT_FALSE(is_calibration("{\"format\": \"paci-cost\"}"));
}

}  // namespace
}  // namespace paci

namespace paci {
namespace {

// A calibration of the base shape (width 128, 4 x 64 tokens, vocabulary 4096) with known pieces.
Calibration base_calibration() {
  Calibration c;
  c.source = "test";
  c.micro_batch = 4, c.seq_len = 64, c.layers = 4;
  c.channels = 128, c.heads = 4, c.vocab = 4096, c.tied = false;
  c.attention = {1e-3, 2e-3, 1.2e-3, 0.8e-3, 1000, 66000, 0};
  c.mlp = {2e-3, 4e-3, 2.2e-3, 1.8e-3, 2000, 132000, 0};
  c.head = {5e-3, 9e-3, 5e-3, 4e-3, 3000, 530000, 0};
  c.embedding = {1e-4, 1e-4, 1e-4, 0, 500, 532000, 0};
  c.stage = {1e-4, 1e-4, 0, 0, 0, 0, 8192};
  c.boundary_bytes = 4 * 64 * 128 * 4;
  return c;
}

GptConfig base_model() {
  GptConfig m;
  m.layers = 4, m.channels = 128, m.heads = 4, m.vocab_size = m.padded_vocab = 4096, m.seq_len = 64;
  return m;
}

// Rescaling by FLOPs: to the same shape it changes nothing; twice the tokens doubles every
// GEMM-bound piece; parameters are those of the new model exactly.
TEST(Calibration, RescaledByFlopsToAnotherModel) {
  const Calibration c = base_calibration();
  const GptConfig m = base_model();
  EXPECT_TRUE(calibrated_for(c, m, 4, 64));
  EXPECT_TRUE(calibrated_for(c, [&] { GptConfig d = m; d.layers = 6; return d; }(), 4, 64));  // depth is free
  const Calibration same = rescale_calibration(c, m, 4, 64);
  EXPECT_NEAR(same.mlp.f, c.mlp.f, 1e-15);
  EXPECT_NEAR(same.attention.w, c.attention.w, 1e-15);
  // Twice the micro-batch: GEMM-bound pieces (MLP: no attention term) double; the message too.
  EXPECT_FALSE(calibrated_for(c, m, 8, 64));
  const Calibration twice = rescale_calibration(c, m, 8, 64);
  EXPECT_NEAR(twice.mlp.f, 2 * c.mlp.f, 1e-12);
  EXPECT_NEAR(twice.mlp.w, 2 * c.mlp.w, 1e-12);
  EXPECT_NEAR(twice.boundary_bytes, 2 * c.boundary_bytes, 1e-6);
  EXPECT_NEAR(twice.stage.workspace_bytes, 2 * c.stage.workspace_bytes, 1e-6);
  EXPECT_EQ(twice.micro_batch, 8);
  // Twice the width: the MLP's GEMMs (16 C^2 per token) take four times as long.
  GptConfig wide = m;
  wide.channels = 256;
  const Calibration w = rescale_calibration(c, wide, 4, 64);
  EXPECT_NEAR(w.mlp.w, 4 * c.mlp.w, 1e-12);
  EXPECT_EQ(w.mlp.params, static_cast<double>(unit_parameters(wide, 2, true)));
  EXPECT_EQ(w.channels, 256);
  // A calibration without its model's width cannot be rescaled.
  Calibration old = c;
  old.channels = 0;
  EXPECT_THROW(rescale_calibration(old, wide, 4, 64), CalibrationError);
  // The model record survives the file.
  const Calibration back = calibration_from_json(calibration_to_json(c), "c.json");
  EXPECT_EQ(back.channels, 128);
  EXPECT_EQ(back.vocab, 4096);
}

}  // namespace
}  // namespace paci

namespace paci {
namespace {

// A 2 x 2 grid (widths 128, 256; 256 and 512 tokens): GEMM seconds chosen so that no two points
// have the same seconds per FLOP.
GemmCurve synthetic_curve() {
  GemmCurve g;
  g.vocab = 4096;
  auto point = [](int c, int n, double s) {
    GemmPoint p;
    p.channels = c, p.tokens = n;
    p.attention = {0.3e-3 * s, 0.35e-3 * s, 0.25e-3 * s};
    p.mlp = {0.9e-3 * s, 1.0e-3 * s, 0.8e-3 * s};
    p.head = {3e-3 * s, 2.5e-3 * s, 2e-3 * s};
    return p;
  };
  g.points = {point(128, 256, 1.0), point(256, 256, 3.0), point(128, 512, 1.7), point(256, 512, 6.5)};
  return g;
}

// t' = g x G_to / G_from + (t - g) x r with g = min(t, G_from): a synthetic curve gives exactly
// these costs at grid points, between them (bilinear seconds per FLOP in log space) and beyond
// (the edge's seconds per FLOP).
TEST(Calibration, GemmCurveRescalesByMeasuredGemmTimes) {
  Calibration c = base_calibration();
  c.gemm = synthetic_curve();
  GptConfig wide = base_model();
  wide.channels = 256;
  const Calibration w = rescale_calibration(c, wide, 4, 64);
  // MLP half F: GEMM part 0.9 ms -> 2.7 ms; the rest (2 - 0.9 ms) scales by tokens x width (x2).
  EXPECT_NEAR(w.mlp.f, 0.9e-3 * 3.0 + (2e-3 - 0.9e-3) * 2, 1e-15);
  EXPECT_NEAR(w.mlp.i, 1.0e-3 * 3.0 + (2.2e-3 - 1.0e-3) * 2, 1e-15);
  EXPECT_NEAR(w.mlp.w, 0.8e-3 * 3.0 + (1.8e-3 - 0.8e-3) * 2, 1e-15);
  // B: the I and W GEMMs together (1.8 ms -> 5.4 ms), the rest by tokens x width (x2).
  EXPECT_NEAR(w.mlp.b, 1.8e-3 * 3.0 + (4e-3 - 1.8e-3) * 2, 1e-15);
  // Attention half: the rest is attention's T x T products, 4TC per token: x2 at twice the width.
  EXPECT_NEAR(w.attention.f, 0.3e-3 * 3.0 + (1e-3 - 0.3e-3) * 2, 1e-15);
  // Its W: the GEMM part is capped at the piece's own time (0.25 ms < 0.8 ms here: not capped).
  EXPECT_NEAR(w.attention.w, 0.25e-3 * 3.0 + (0.8e-3 - 0.25e-3) * 2, 1e-15);
  // Head F: the rest (softmax, cross-entropy, final LayerNorm: 5V + 8C per token) by that ratio.
  const double head_rest = (5.0 * 4096 + 8 * 256) / (5.0 * 4096 + 8 * 128);
  EXPECT_NEAR(w.head.f, 3e-3 * 3.0 + (5e-3 - 3e-3) * head_rest, 1e-15);
  // The embedding has no GEMM: by FLOPs (2C per token) as before.
  EXPECT_NEAR(w.embedding.f, 2 * c.embedding.f, 1e-15);
  // The per-stage part and the message by tokens x width.
  EXPECT_NEAR(w.stage.f, 2 * c.stage.f, 1e-15);
  EXPECT_NEAR(w.boundary_bytes, 2 * c.boundary_bytes, 1e-9);
  EXPECT_THAT(w.source, ::testing::HasSubstr("rescaled by measured GEMM times"));

  // Twice the tokens (micro-batches of 8): the GEMM part x1.7, the rest x2 (attention's rest:
  // tokens x T x C, T unchanged).
  const Calibration t = rescale_calibration(c, base_model(), 8, 64);
  EXPECT_NEAR(t.mlp.f, 0.9e-3 * 1.7 + (2e-3 - 0.9e-3) * 2, 1e-15);
  EXPECT_NEAR(t.attention.i, 0.35e-3 * 1.7 + (1.2e-3 - 0.35e-3) * 2, 1e-15);

  // A piece faster than its GEMMs alone (noise): all of it is GEMM and scales by the curve.
  Calibration fast = c;
  fast.mlp.w = 0.5e-3;
  EXPECT_NEAR(rescale_calibration(fast, wide, 4, 64).mlp.w, 0.5e-3 * 3.0, 1e-15);

  // Between grid points: seconds per FLOP interpolated bilinearly in log(width), log(tokens).
  // Width 181 (between 128 and 256), 256 tokens.
  const double u = (std::log(181.0) - std::log(128.0)) / (std::log(256.0) - std::log(128.0));
  const double f128 = 0.9e-3 / (16.0 * 128 * 128 * 256), f256 = 3 * 0.9e-3 / (16.0 * 256 * 256 * 256);
  EXPECT_NEAR(gemm_seconds(c.gemm, GemmPiece::kMlp, 0, 181, 256, 4096),
              ((1 - u) * f128 + u * f256) * 16.0 * 181 * 181 * 256, 1e-15);
  // Beyond the grid: the nearest edge's seconds per FLOP (width 512, 1024 tokens: the 256 x 512
  // point's).
  const double edge = 6.5 * 0.9e-3 / (16.0 * 256 * 256 * 512);
  EXPECT_NEAR(gemm_seconds(c.gemm, GemmPiece::kMlp, 0, 512, 1024, 4096), edge * 16.0 * 512 * 512 * 1024, 1e-15);
  // The head at another vocabulary: the curve's seconds per FLOP at its own vocabulary.
  EXPECT_NEAR(gemm_seconds(c.gemm, GemmPiece::kHead, 0, 128, 256, 8192), 2 * 3e-3, 1e-15);
  // At the calibrated shape nothing changes.
  const Calibration same = rescale_calibration(c, base_model(), 4, 64);
  EXPECT_NEAR(same.mlp.f, c.mlp.f, 1e-15);
  EXPECT_NEAR(same.head.b, c.head.b, 1e-15);

  // The curve survives the file exactly.
  const Calibration back = calibration_from_json(calibration_to_json(c), "c.json");
  ASSERT_EQ(back.gemm.points.size(), 4u);
  EXPECT_EQ(back.gemm.vocab, 4096);
  const Calibration wb = rescale_calibration(back, wide, 4, 64);
  EXPECT_DOUBLE_EQ(wb.mlp.f, w.mlp.f);
  EXPECT_DOUBLE_EQ(wb.head.b, w.head.b);
}

// A calibration file of version 2 (no "gemm" curve) still loads and rescales by FLOPs.
TEST(Calibration, FilesWithoutAGemmCurveRescaleByFlops) {
  nlohmann::json j = nlohmann::json::parse(calibration_to_json(base_calibration()));
  ASSERT_FALSE(j.contains("gemm"));
  EXPECT_EQ(j["version"], 3);
  j["version"] = 2;
  const Calibration c = calibration_from_json(j.dump(), "old.json");
  EXPECT_TRUE(c.gemm.empty());
  GptConfig wide = base_model();
  wide.channels = 256;
  const Calibration w = rescale_calibration(c, wide, 4, 64);
  // The MLP's GEMMs (16 C^2 per token): four times as long in every pass, B included.
  EXPECT_NEAR(w.mlp.f, 4 * c.mlp.f, 1e-15);
  EXPECT_NEAR(w.mlp.i, 4 * c.mlp.i, 1e-15);
  EXPECT_NEAR(w.mlp.w, 4 * c.mlp.w, 1e-15);
  EXPECT_NEAR(w.mlp.b, 4 * c.mlp.b, 1e-15);
  // Attention half F: (8 C^2 + 4 T C) per token.
  EXPECT_NEAR(w.attention.f, c.attention.f * (8.0 * 256 * 256 + 4 * 64 * 256) / (8.0 * 128 * 128 + 4 * 64 * 128),
              1e-15);
  EXPECT_THAT(w.source, ::testing::HasSubstr("rescaled by FLOPs"));
  // So does a calibration in code without a curve.
  EXPECT_NEAR(rescale_calibration(base_calibration(), wide, 4, 64).mlp.f, 4 * c.mlp.f, 1e-15);
}

// Malformed "gemm" objects are refused with one line naming the field.
TEST(Calibration, MalformedGemmCurvesAreRefused) {
  Calibration c = base_calibration();
  c.gemm = synthetic_curve();
  const nlohmann::json good = nlohmann::json::parse(calibration_to_json(c));
  auto refused = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& message) {
    nlohmann::json j = good;
    edit(j);
    try {
      calibration_from_json(j.dump(), "c.json");
      ADD_FAILURE() << "accepted: " << message;
    } catch (const CalibrationError& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr(message));
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  };
  refused([](nlohmann::json& j) { j["gemm"] = 3; }, "c.json: \"gemm\" must be an object");
  refused([](nlohmann::json& j) { j["gemm"].erase("vocab"); }, "gemm.vocab must be an integer in 1..");
  refused([](nlohmann::json& j) { j["gemm"]["vocab"] = 0; }, "gemm.vocab must be an integer in 1..");
  refused([](nlohmann::json& j) { j["gemm"]["threads"] = 2; }, "gemm.threads must be 1");
  refused([](nlohmann::json& j) { j["gemm"]["points"] = nlohmann::json::array(); }, "gemm.points must be an array of 1..");
  refused([](nlohmann::json& j) { j["gemm"]["points"] = "x"; }, "gemm.points must be an array of 1..");
  refused([](nlohmann::json& j) { j["gemm"]["points"][1] = 7; }, "gemm.points[1] must be an object");
  refused([](nlohmann::json& j) { j["gemm"]["points"][0]["channels"] = 0; }, "gemm.points[0].channels must be an integer in 1..");
  refused([](nlohmann::json& j) { j["gemm"]["points"][0]["channels"] = 1.5; }, "gemm.points[0].channels must be an integer");
  refused([](nlohmann::json& j) { j["gemm"]["points"][2].erase("tokens"); }, "gemm.points[2].tokens must be an integer");
  refused([](nlohmann::json& j) { j["gemm"]["points"][0].erase("mlp"); }, "gemm.points[0].mlp must be an object");
  refused([](nlohmann::json& j) { j["gemm"]["points"][0]["head"]["w"] = -1; },
          "gemm.points[0].head.w must be a number of seconds in (0, 1e6]");
  refused([](nlohmann::json& j) { j["gemm"]["points"][0]["head"]["f"] = 0; }, "gemm.points[0].head.f must be a number");
  refused([](nlohmann::json& j) { j["gemm"]["points"][3]["attention"]["i"] = "fast"; },
          "gemm.points[3].attention.i must be a number");
  refused([](nlohmann::json& j) { j["gemm"]["points"][3]["attention"]["i"] = 1e300; },
          "gemm.points[3].attention.i must be a number");
  refused([](nlohmann::json& j) { j["gemm"]["points"][3]["channels"] = 128; j["gemm"]["points"][3]["tokens"] = 256; },
          "gemm.points[0] and [3] are both width 128, 256 tokens");
  refused([](nlohmann::json& j) { j["gemm"]["points"].erase(3); },
          "gemm.points must form a full grid (every width with every token count): 2 widths x 2 token counts but 3 points");
  // Version 2 files never had a curve but one that has it is read.
  nlohmann::json v2 = good;
  v2["version"] = 2;
  EXPECT_EQ(calibration_from_json(v2.dump(), "c.json").gemm.points.size(), 4u);
  // A curve built in code that is not a grid is refused where it is used.
  Calibration bad = c;
  bad.gemm.points.pop_back();
  GptConfig wide = base_model();
  wide.channels = 256;
  EXPECT_THROW(rescale_calibration(bad, wide, 4, 64), CalibrationError);
}

}  // namespace
}  // namespace paci
