// The three backward semantics of an asynchronous schedule, with two weight versions in
// flight: micro-batch A is forwarded with version W0, the stage then updates to W1 and
// forwards micro-batch B, and A's backward runs under
//   current:   the activations of W0, every weight of W1 (what PACI does by default);
//   forward:   the activations of W0, the matmul weights of W0, the LayerNorm weights of W1
//              (bf16 autocast: a linear layer saves its forward-time weight cast);
//   recompute: the forward rerun with W1 from the kept input, then the backward with W1.
//
// References, computed independently of the backward code:
//   recompute = the exact gradient of A's loss at W1, by central differences;
//   forward with W1 - W0 only in matmul weights and biases = the exact gradient at W0 (the
//     LayerNorm weights agree, so nothing of W1 enters), by central differences, and it is
//     not the gradient current gives (which uses W1's matmuls);
//   forward with W1 - W0 only in LayerNorm weights = current, bit for bit (the matmuls
//     agree), and not the exact gradient at W0.
// In double precision at h = 1e-5: |a - fd| <= 1e-9 + 1e-6 max(|a|, |fd|) (the loss, ~3, is
// ~30 smooth layers, truncation h^2 |L'''| < 1e-9, round-off 1e-16 * 3 / 1e-5 = 3e-11); the
// versions differ by 0.05 per element, which moves the gradients by ~1e-3 relative, far above
// the tolerance, so the "is not" checks can tell.
//
// Then the runtime: on one stage with two versions in flight it gives exactly the bits of a
// replay by hand (StageModel + AdamW) that hands each semantics' weights to the backward; the
// versions it records and the memory it holds under each semantics
// equal the static analysis (weight copies under forward, kept stage inputs under recompute),
// a synchronous schedule gives the same bits under all three, and PACI with drift gives three
// different results.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "exec/model/cpu_backend.h"
#include "exec/model/optimizer.h"
#include "exec/model/stage_model.h"
#include "exec/runtime/runtime.h"
#include "schedules/analysis.h"
#include "schedules/registry.h"
#include "schedules/source.h"
#include "schedules/trace/metrics.h"
#include "sim/cost.h"
#include "sim/simulator.h"
#include "tests/model/grad_check.h"
#include "tests/model/pipeline_util.h"

namespace paci {
namespace {

using testing::random_tokens;

GptConfig tiny_config() {
  GptConfig cfg;
  cfg.vocab_size = 23;
  cfg.padded_vocab = 32;
  cfg.seq_len = 8;
  cfg.layers = 2;
  cfg.channels = 8;
  cfg.heads = 2;
  return cfg;
}

bool is_layernorm(const std::string& name) { return name.find("ln") != std::string::npos; }

enum class Diff { kAll, kMatmulOnly, kLayerNormOnly };

struct TwoVersions {
  GptConfig cfg = tiny_config();
  static constexpr int B = 2, Tn = 6;
  CpuBackendT<double> be;
  StageModelT<double> m{be, cfg, stage_from_units(cfg, 0, num_units(cfg) - 1), B, Tn, 2, 7};
  std::vector<double> w0, w1;
  std::vector<int> tok_a = random_tokens(B * Tn, cfg.vocab_size, 1), tgt_a = random_tokens(B * Tn, cfg.vocab_size, 2);
  std::vector<int> tok_b = random_tokens(B * Tn, cfg.vocab_size, 3), tgt_b = random_tokens(B * Tn, cfg.vocab_size, 4);

  explicit TwoVersions(Diff diff) {
    const size_t n = m.param_count();
    // Away from GPT-2's init (unit LayerNorm, zero biases), where a wrong gradient could pass.
    w0.assign(m.params(), m.params() + n);
    for (const TensorInfo& t : m.layout().tensors) {
      NormalStream rng(99, t.global_id);
      for (size_t i = 0; i < t.size; ++i) w0[t.offset + i] += 0.2 * rng.next();
    }
    w1 = w0;
    for (const TensorInfo& t : m.layout().tensors) {
      const bool ln = is_layernorm(t.name);
      if ((diff == Diff::kMatmulOnly && ln) || (diff == Diff::kLayerNormOnly && !ln)) continue;
      NormalStream rng(77, t.global_id);
      for (size_t i = 0; i < t.size; ++i) w1[t.offset + i] += 0.05 * rng.next();
    }
  }

  // Forward A (slot 0) with W0, update to W1, forward B (slot 1) with W1: two versions in
  // flight. Returns the gradients of A's backward under `p`.
  std::vector<double> gradient_of_a(WeightPolicy p) {
    m.zero_grad();
    m.forward(0, w0.data(), tok_a.data(), nullptr, tgt_a.data(), nullptr);
    m.forward(1, w1.data(), tok_b.data(), nullptr, tgt_b.data(), nullptr);
    switch (p) {
      case WeightPolicy::kCurrent: m.backward(0, w1.data(), nullptr, nullptr, 1.0); break;
      case WeightPolicy::kForward: m.backward(0, w0.data(), nullptr, nullptr, 1.0, w1.data()); break;
      case WeightPolicy::kRecompute:
        m.release(0);
        m.forward(0, w1.data(), tok_a.data(), nullptr, tgt_a.data(), nullptr);
        m.backward(0, w1.data(), nullptr, nullptr, 1.0);
        break;
      default: ADD_FAILURE() << "not a backward semantics";
    }
    m.release(1);
    return std::vector<double>(m.grads(), m.grads() + m.param_count());
  }

  // Central differences of A's loss at weights w, on every 3rd element.
  void expect_exact_gradient_at(std::vector<double>& w, const std::vector<double>& analytic, const char* what) {
    auto loss = [&] {
      const double l = m.forward(0, w.data(), tok_a.data(), nullptr, tgt_a.data(), nullptr);
      m.release(0);
      return l;
    };
    std::vector<size_t> idx;
    for (size_t i = 0; i < w.size(); i += 3) idx.push_back(i);
    testing::check_gradient(what, w.data(), w.size(), analytic.data(), loss, idx, 1e-5, 1e-6, 1e-9);
  }
};

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(a[i] - b[i]) / (1e-6 + std::max(std::fabs(a[i]), std::fabs(b[i]))));
  return worst;
}

TEST(BackwardSemantics, RecomputeIsTheExactGradientAtTheCurrentWeights) {
  TwoVersions t(Diff::kAll);
  const std::vector<double> g = t.gradient_of_a(WeightPolicy::kRecompute);
  t.expect_exact_gradient_at(t.w1, g, "recompute vs d loss_A / d W1");
  EXPECT_GT(max_rel_diff(g, t.gradient_of_a(WeightPolicy::kCurrent)), 1e-3) << "recompute equals current";
}

TEST(BackwardSemantics, ForwardUsesTheForwardsMatmulWeights) {
  TwoVersions t(Diff::kMatmulOnly);
  const std::vector<double> g = t.gradient_of_a(WeightPolicy::kForward);
  t.expect_exact_gradient_at(t.w0, g, "forward (LayerNorm equal) vs d loss_A / d W0");
  EXPECT_GT(max_rel_diff(g, t.gradient_of_a(WeightPolicy::kCurrent)), 1e-3) << "forward equals current";
}

TEST(BackwardSemantics, ForwardUsesTheCurrentLayerNormWeights) {
  TwoVersions t(Diff::kLayerNormOnly);
  const std::vector<double> g = t.gradient_of_a(WeightPolicy::kForward);
  const std::vector<double> c = t.gradient_of_a(WeightPolicy::kCurrent);
  for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(g[i], c[i]) << "element " << i;
  // And not the gradient at W0: the LayerNorm weights of W1 entered.
  std::vector<double> exact(g.size());
  {
    t.m.zero_grad();
    t.m.forward(0, t.w0.data(), t.tok_a.data(), nullptr, t.tgt_a.data(), nullptr);
    t.m.backward(0, t.w0.data(), nullptr, nullptr, 1.0);
    exact.assign(t.m.grads(), t.m.grads() + t.m.param_count());
  }
  EXPECT_GT(max_rel_diff(g, exact), 1e-3);
}

// The runtime, on a small float model.
GptConfig small_model() {
  GptConfig c;
  c.vocab_size = 256;
  c.padded_vocab = 256;
  c.seq_len = 16;
  c.layers = 4;
  c.channels = 32;
  c.heads = 4;
  return c;
}

struct Outcome {
  RunResult result;
  std::vector<std::vector<float>> weights;  // [stage]
};

Outcome run(const Schedule& s) {
  RunConfig cfg;
  cfg.model = small_model();
  cfg.seed = 7;
  cfg.adamw.lr = 1e-3;
  cfg.adamw.warmup_steps = 2;
  cfg.adamw.total_steps = 10;
  SyntheticBatches data(2, 16, cfg.model.vocab_size, 7);
  PipelineRuntime rt(s, cfg, data);
  Outcome o;
  o.result = rt.run();
  for (int st = 0; st < rt.num_stages(); ++st)
    o.weights.emplace_back(rt.stage(st).params(), rt.stage(st).params() + rt.stage(st).param_count());
  return o;
}

Schedule paci_with(WeightPolicy b) { return with_backward(make_schedule("paci", {4, 4, 3, std::nullopt, 2}), b); }

// One stage, by hand: F0 F1 B0 OPT B1 OPT. Micro-batch 1 is forwarded with version 0 and
// backwarded after the update to version 1: two versions in flight. The reference replays it
// with a StageModel and AdamW, giving B1 the weights each semantics names (the model calls
// whose gradients the double-precision tests above check); the runtime must give the same bits.
Schedule two_versions_schedule(WeightPolicy b) {
  Schedule s;
  s.name = "two-versions";
  s.spec = {1, 1, 2, 1};
  s.accum = 1;
  s.policy = b;
  s.stage_device = {0};
  s.programs = {{Fwd(0, 0), Fwd(0, 1), Bwd(0, 0), Opt(0), Bwd(0, 1), Opt(0)}};
  return s;
}

TEST(BackwardSemantics, RuntimeGivesBackwardTheWeightsEachSemanticsNames) {
  const GptConfig model = small_model();
  for (WeightPolicy b : {WeightPolicy::kCurrent, WeightPolicy::kForward, WeightPolicy::kRecompute}) {
    const Schedule s = two_versions_schedule(b);
    ASSERT_EQ(analyze(s).mb[0][1].v_fwd, 0);
    const Outcome got = run(s);

    RunConfig cfg;  // as run() sets it
    cfg.adamw.lr = 1e-3;
    cfg.adamw.warmup_steps = 2;
    cfg.adamw.total_steps = 10;
    SyntheticBatches data(2, 16, model.vocab_size, 7);
    CpuBackend be(CpuBackendOptions{1});
    StageModel m(be, model, stage_from_units(model, 0, num_units(model) - 1), 2, 16, 2, 7);
    AdamW opt(be, m.layout(), cfg.adamw);
    std::vector<int> tok0(32), tgt0(32), tok1(32), tgt1(32);
    data.get(0, tok0.data(), tgt0.data());
    data.get(1, tok1.data(), tgt1.data());
    m.forward(0, m.params(), tok0.data(), nullptr, tgt0.data(), nullptr);
    m.forward(1, m.params(), tok1.data(), nullptr, tgt1.data(), nullptr);
    const std::vector<float> w0(m.params(), m.params() + m.param_count());
    m.backward(0, m.params(), nullptr, nullptr, 1.0f);
    opt.step(m.params(), m.grads());
    m.zero_grad();
    switch (b) {
      case WeightPolicy::kCurrent: m.backward(1, m.params(), nullptr, nullptr, 1.0f); break;
      case WeightPolicy::kForward: m.backward(1, w0.data(), nullptr, nullptr, 1.0f, m.params()); break;
      default:
        m.release(1);
        m.forward(1, m.params(), tok1.data(), nullptr, tgt1.data(), nullptr);
        m.backward(1, m.params(), nullptr, nullptr, 1.0f);
    }
    opt.step(m.params(), m.grads());
    const std::vector<float> want(m.params(), m.params() + m.param_count());
    ASSERT_EQ(got.weights[0], want) << policy_name(b);
  }
}

TEST(BackwardSemantics, RuntimeRecordsWhatTheAnalysisPredicts) {
  for (WeightPolicy b : {WeightPolicy::kForward, WeightPolicy::kRecompute}) {
    const Schedule s = paci_with(b);
    const Analysis an = analyze(s);
    const Outcome o = run(s);
    for (int st = 0; st < s.stages(); ++st) {
      for (int mb = 0; mb < s.spec.total_microbatches(); ++mb) {
        EXPECT_EQ(o.result.v_fwd[st][mb], an.mb[st][mb].v_fwd) << policy_name(b) << " stage " << st << " mb " << mb;
        EXPECT_EQ(o.result.v_bwd[st][mb], an.mb[st][mb].v_bwd) << policy_name(b) << " stage " << st << " mb " << mb;
      }
      const StageMemory& mem = o.result.memory[st];
      if (b == WeightPolicy::kForward) {
        EXPECT_EQ(mem.peak_stashed_copies + 1, an.stages[st].weight_copies) << "stage " << st;
        EXPECT_EQ(mem.peak_slots_in_use, an.stages[st].inflight_peak) << "stage " << st;
      } else {
        EXPECT_TRUE(an.stages[st].inputs_only);
        EXPECT_EQ(mem.peak_stashed_copies, 0);
        EXPECT_EQ(mem.peak_slots_in_use, 1) << "one slot serves forwards and reruns, stage " << st;
        EXPECT_EQ(mem.peak_inputs_kept, st == 0 ? 0 : an.stages[st].inflight_peak) << "stage " << st;
      }
    }
  }
  // PACI on 4 stages with a = 2 has drift 2 on stage 0, so forward holds copies there.
  EXPECT_GT(analyze(paci_with(WeightPolicy::kForward)).stages[0].weight_copies, 1);
}

TEST(BackwardSemantics, SynchronousScheduleGivesTheSameBitsUnderEach) {
  const Schedule base = make_schedule("1f1b", {4, 4, 3});
  const Outcome ref = run(base);
  for (WeightPolicy b : {WeightPolicy::kForward, WeightPolicy::kRecompute}) {
    const Outcome o = run(with_backward(base, b));
    for (size_t st = 0; st < ref.weights.size(); ++st)
      ASSERT_EQ(ref.weights[st], o.weights[st]) << policy_name(b) << " stage " << st;
    ASSERT_EQ(ref.result.batch_loss, o.result.batch_loss) << policy_name(b);
  }
}

TEST(BackwardSemantics, DriftMakesTheThreeDiffer) {
  const Outcome c = run(paci_with(WeightPolicy::kCurrent));
  const Outcome f = run(paci_with(WeightPolicy::kForward));
  const Outcome r = run(paci_with(WeightPolicy::kRecompute));
  EXPECT_NE(c.weights[0], f.weights[0]);
  EXPECT_NE(c.weights[0], r.weights[0]);
  EXPECT_NE(f.weights[0], r.weights[0]);
  // The last stage has no drift (its backward follows its forward at once): the same bits
  // there would need the same inputs, which drift upstream changes, so only stage 0 is
  // compared.
}

// The simulator's memory model and durations under each semantics, against the analysis, with
// uniform costs (exact numbers: f = 1, b = 2, act = 10 per micro-batch, msg = 1 per stage
// input, weights = 100 per stage).
TEST(BackwardSemantics, SimulatorMemoryAndTimeFollowTheAnalysis) {
  const CostModel c = parse_uniform_cost("f=1,b=2,act=10,msg=1,weights=100");
  const Schedule cur = paci_with(WeightPolicy::kCurrent);
  const TraceMetrics mc = compute_metrics(simulate(cur, c).trace);
  for (WeightPolicy b : {WeightPolicy::kForward, WeightPolicy::kRecompute}) {
    const Schedule s = paci_with(b);
    const Analysis an = analyze(s);
    const TraceMetrics m = compute_metrics(simulate(s, c).trace);
    for (int d = 0; d < s.devices(); ++d) {
      const DeviceMetrics& dm = m.devices[d];
      const int inflight = an.stages[d].inflight_peak;
      if (b == WeightPolicy::kForward) {  // the copies, and activations as under current
        EXPECT_DOUBLE_EQ(dm.static_memory.stashed, (an.stages[d].weight_copies - 1) * 100.0) << "device " << d;
        EXPECT_DOUBLE_EQ(dm.peak_dynamic, mc.devices[d].peak_dynamic) << "device " << d;
      } else {  // inputs of the micro-batches in flight (not on the first stage) + one B's activations
        EXPECT_DOUBLE_EQ(dm.static_memory.stashed, 0.0);
        EXPECT_DOUBLE_EQ(dm.peak_dynamic, (d == 0 ? 0.0 : inflight * 1.0) + 10.0) << "device " << d;
      }
    }
    if (b == WeightPolicy::kForward) EXPECT_DOUBLE_EQ(m.makespan, mc.makespan);
  }
  // recompute: each B takes f + b.
  const Trace t = simulate(paci_with(WeightPolicy::kRecompute), c).trace;
  for (const TraceAction& a : t.actions)
    if (a.action.kind == ActionKind::B) ASSERT_DOUBLE_EQ(a.end - a.start, 3.0);
}

TEST(BackwardSemantics, RefusedWhereItDoesNotApply) {
  EXPECT_THROW(with_backward(make_schedule("pipedream", {4, 4, 2}), WeightPolicy::kForward), ParamError);
  EXPECT_THROW(with_backward(make_schedule("zb-h1", {4, 4, 2}), WeightPolicy::kRecompute), ParamError);
  EXPECT_THROW(with_backward(make_schedule("paci", {4, 4, 2}), WeightPolicy::kStash), ParamError);
  EXPECT_NO_THROW(with_backward(make_schedule("zb-h1", {4, 4, 2}), WeightPolicy::kForward));
}

}  // namespace
}  // namespace paci
