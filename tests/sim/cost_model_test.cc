// Cost models: the --cost flag, JSON cost files and their errors, the analytic GPT model.
#include <gtest/gtest.h>

#include "sim/gpt_cost.h"
#include "tests/sim/test_util.h"

namespace paci::testing {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CostError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(UniformCost, ParsesTheIssueExample) {
  CostModel c = parse_uniform_cost("f=1,b=2,w=1,opt=0.1,comm=0.05");
  ASSERT_EQ(c.stages.size(), 1u);
  EXPECT_EQ(c.stages[0].f, 1);
  EXPECT_EQ(c.stages[0].b, 2);
  EXPECT_EQ(c.stages[0].i, 1);
  EXPECT_EQ(c.stages[0].w, 1);
  EXPECT_EQ(c.stages[0].opt, 0.1);
  EXPECT_EQ(c.latency, 0.05);
  EXPECT_EQ(c.memory_unit, "slots");
  CostModel d = parse_uniform_cost("f=1,i=1.5,w=0.5");
  EXPECT_EQ(d.stages[0].b, 2);
  CostModel e = parse_uniform_cost("b=3");
  EXPECT_EQ(e.stages[0].i, 1.5);
}

TEST(UniformCost, ErrorsNameTheKeyAndWhatIsAllowed) {
  EXPECT_EQ(error_of([] { parse_uniform_cost("f=-1"); }), "--cost: f must be a finite number >= 0 (got -1)");
  EXPECT_NE(error_of([] { parse_uniform_cost("x=1"); }).find("unknown key 'x' (keys: f, b, i, w"),
            std::string::npos);
  EXPECT_EQ(error_of([] { parse_uniform_cost("f=abc"); }), "--cost: f: 'abc' is not a number");
  EXPECT_NE(error_of([] { parse_uniform_cost("b=1,w=2"); }).find("i = -1, w = 2: both must be >= 0"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_uniform_cost("b=3,i=1,w=1"); }).find("b = 3 must equal i + w = 2"),
            std::string::npos);
}

TEST(UniformCost, PerChunkSplitsADevicesShareAcrossVirtualStages) {
  CostModel c = parse_uniform_cost("f=1,b=2,act=4,weights=8,msg=3");
  CostModel h = per_chunk(c, 2);
  EXPECT_EQ(h.stages[0].f, 0.5);
  EXPECT_EQ(h.stages[0].b, 1);
  EXPECT_EQ(h.stages[0].activation_bytes, 2);
  EXPECT_EQ(h.stages[0].weight_bytes, 4);
  EXPECT_EQ(h.stages[0].send_bytes, 3);  // a boundary's activation does not shrink
  EXPECT_EQ(per_chunk(c, 1).stages[0].f, 1);
}

TEST(CostFile, PerStageWithDefaults) {
  CostModel c = cost_from_json(R"({"format": "paci-cost", "version": 1, "latency": 0.5, "bandwidth": 100,
    "default": {"f": 1, "b": 2, "activation_bytes": 10},
    "stages": [{"f": 2}, {"b": 4, "w": 1}, {"freed_by_i": 0.5}]})", "c.json");
  ASSERT_EQ(c.stages.size(), 3u);
  EXPECT_EQ(c.stages[0].f, 2);
  EXPECT_EQ(c.stages[0].b, 2);
  EXPECT_EQ(c.stages[1].i, 3);
  EXPECT_EQ(c.stages[2].activation_bytes, 10);
  EXPECT_EQ(c.stages[2].freed_by_i, 0.5);
  EXPECT_EQ(c.transfer_time(50), 1.0);
  EXPECT_NO_THROW(c.check(3));
  EXPECT_EQ(error_of([&] { c.check(4); }),
            "c.json: has costs for 3 stages but the schedule has 4 (give one entry per stage, or one for all)");
  // Round trip through cost_to_json.
  CostModel back = cost_from_json(cost_to_json(c), "back.json");
  EXPECT_EQ(back.stages[1].i, 3);
  EXPECT_EQ(back.latency, 0.5);
}

TEST(CostFile, MalformedFilesGiveOneLineNamingFileAndField) {
  auto err = [](const char* text) { return error_of([&] { cost_from_json(text, "bad.json"); }); };
  EXPECT_EQ(err(R"({"format": "paci-cost", "version": 1, "stages": [{"f": -1}]})"),
            "bad.json: stages[0].f: must be a finite number >= 0 (got -1)");
  EXPECT_EQ(err(R"({"format": "paci-cost", "version": 1, "stages": [{"f": "fast"}]})"),
            "bad.json: stages[0].f: must be a number >= 0 (got \"fast\")");
  EXPECT_NE(err(R"({"format": "paci-cost", "version": 1, "stages": [{"fwd": 1}]})")
                .find("bad.json: stages[0].fwd: unknown field (allowed: f, b, i, w, opt"),
            std::string::npos);
  EXPECT_EQ(err(R"({"format": "paci-cost", "version": 1, "stages": [{"freed_by_i": 2}]})"),
            "bad.json: stages[0].freed_by_i: must be in [0, 1] (got 2)");
  EXPECT_EQ(err(R"({"format": "other", "version": 1})"), "bad.json: format: must be \"paci-cost\"");
  EXPECT_EQ(err(R"({"format": "paci-cost", "version": 2})"), "bad.json: version: must be 1");
  EXPECT_EQ(err(R"({"format": "paci-cost", "version": 1})"),
            "bad.json: needs \"stages\" (one object per stage) or \"default\"");
  EXPECT_NE(err("{oops").find("bad.json: not valid JSON"), std::string::npos);
  EXPECT_NE(err(R"({"format": "paci-cost", "version": 1, "latncy": 1, "default": {}})")
                .find("bad.json: unknown field 'latncy'"),
            std::string::npos);
  EXPECT_EQ(error_of([] { load_cost_file("/nonexistent/cost.json"); }),
            "cost file /nonexistent/cost.json: cannot open (No such file or directory)");
}

TEST(CostModel, NegativeDurationsAndBadWhatIfsAreRejectedBySimulate) {
  CostModel c = uniform();
  c.stages[0].f = -1;
  EXPECT_NE(error_of([&] { simulate(gen("1f1b", 2, 2), c); }).find("stages[0].f: must be a finite number >= 0"),
            std::string::npos);
  SimOptions o;
  o.stragglers = {{5, 2}};
  EXPECT_NE(error_of([&] { simulate(gen("1f1b", 2, 2), uniform(), o); }).find("stage must be in 0..1"),
            std::string::npos);
}

TEST(GptModel, Gpt2MediumHasThePapersParameterCount) {
  GptConfig g = parse_gpt_model("gpt2-350m");
  EXPECT_EQ(g.layers, 24);
  EXPECT_EQ(g.channels, 1024);
  EXPECT_FALSE(g.tied_embeddings);
  EXPECT_NEAR(num_parameters(g) / 1e6, 406, 1);  // REFERENCE.md: ~406M, untied head
  GptCostOptions o;
  o.model = g;
  o.device = parse_device("h100");
  o.stages = 8;
  GptCost c = gpt_cost_model(o);
  double blocks = 0, params = 0;
  for (int s = 0; s < 8; ++s) {
    blocks += c.blocks_per_stage[s];
    params += c.params_per_stage[s];
  }
  EXPECT_EQ(blocks, 24);
  EXPECT_NEAR(params, num_parameters(g), 1);
  EXPECT_NE(c.cost.description.find("partition " + c.layout), std::string::npos) << c.cost.description;
  // The head makes the last stage heavy: it gets fewer blocks than a middle stage.
  EXPECT_LT(c.blocks_per_stage[7], c.blocks_per_stage[3]);
  // Units balance what whole layers cannot: the slowest stage is within 5% of the mean (the
  // head alone, ~3.5 blocks, is a lower bound on the slowest stage).
  double hi = 0, sum = 0;
  for (const StageCost& st : c.cost.stages) hi = std::max(hi, st.f + st.b), sum += st.f + st.b;
  EXPECT_LT(hi / (sum / 8), 1.05) << c.layout;

  // Costs of whole layers, as before units: the explicit whole-layer partition 3,3,3,3,3,4,4,1.
  o.partition = parse_layout(g, "3,3,3,3,3,4,4,1");
  c = gpt_cost_model(o);
  EXPECT_EQ(c.layout, "E+3,3,3,3,3,4,4,1+H");
  // A middle layer's forward: 24 b s h^2 + 4 b s^2 h FLOPs at 70% of 989 TFLOP/s plus traffic.
  const double tok = 8 * 1024.0, h = 1024;
  const double flops = 24 * tok * h * h + 4 * tok * 1024 * h;
  const StageCost& mid = c.cost.stages[3];
  EXPECT_GT(mid.f, c.layers_per_stage[3] * flops / (0.7 * 989e12));
  // With the elementwise traffic a layer lands at 45-60% MFU (llm.c reports 46-60%).
  const double mfu = c.layers_per_stage[3] * 3 * flops / (mid.f + mid.b) / 989e12;
  EXPECT_GT(mfu, 0.45);
  EXPECT_LT(mfu, 0.60);
  EXPECT_NEAR(mid.b, mid.i + mid.w, 1e-15);
  EXPECT_NEAR(mid.send_bytes, tok * h * 2, 1e-6);
  EXPECT_NEAR(mid.freed_by_i, 20.0 / 34, 1e-12);
  EXPECT_EQ(c.cost.tokens_per_microbatch, tok);
  EXPECT_EQ(c.cost.device_memory, 80e9);
  // H200: same compute, more bandwidth, so never slower.
  o.device = parse_device("h200");
  GptCost c2 = gpt_cost_model(o);
  EXPECT_LE(c2.cost.stages[3].f, mid.f);
}

TEST(GptModel, MemoryLimitAndExplicitPartition) {
  GptCostOptions o;
  o.model = parse_gpt_model("gpt2-350m");
  o.device = parse_device("h100");
  o.stages = 8;
  const GptCost free = gpt_cost_model(o);
  // GPipe with M = 64 micro-batches in flight on every stage cannot fit 1 GB per device: the
  // error says what would fit.
  o.limits.inflight.assign(8, 64);
  o.limits.memory_limit = 1e9;
  const std::string e = error_of([&] { gpt_cost_model(o); });
  EXPECT_NE(e.find("smallest per-device memory that fits is"), std::string::npos) << e;
  o.limits.memory_limit = 0;
  const GptCost unlimited = gpt_cost_model(o);
  EXPECT_EQ(unlimited.layout, free.layout);  // no limit: in-flight counts do not matter
  // 1F1B (P - s in flight, the default): stage 0 holds 8 micro-batches. A limit below the
  // balanced split's peak moves blocks off the first stages and is respected.
  o.limits.inflight.clear();
  double peak = 0;
  const auto units = gpt_partition_costs(o);
  for (double m : stage_memory(units, unit_bounds(free.partition), o.limits)) peak = std::max(peak, m);
  o.limits.memory_limit = peak * 0.9;
  GptCost limited;
  ASSERT_NO_THROW(limited = gpt_cost_model(o));
  EXPECT_NE(limited.layout, free.layout);
  for (double m : stage_memory(units, unit_bounds(limited.partition), o.limits))
    EXPECT_LE(m, o.limits.memory_limit * (1 + 1e-12));
  // Explicit partitions must fit the stage count and cover the model.
  o.limits = {};
  o.partition = parse_layout(o.model, "E,24,H");
  EXPECT_NE(error_of([&] { gpt_cost_model(o); }).find("--partition has 3 stages, the schedule has 8"),
            std::string::npos);
  o.stages = 3;
  EXPECT_EQ(gpt_cost_model(o).layout, "E,24,H");
}

TEST(GptModel, BadModelsAndDevicesAreClearErrors) {
  EXPECT_NE(error_of([] { parse_gpt_model("gpt5"); }).find("--model: unknown model preset 'gpt5' (allowed: tiny, bytes, gpt2-124m"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_device("tpu"); }).find("--device: unknown device 'tpu' (allowed: h100, h200"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_gpt_model("custom:layers=2,d=10,heads=3,seq=8,vocab=16"); })
                .find("d=10 must be a multiple of heads=3"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_gpt_model("custom:layers=2,d=8"); }).find("needs heads=N"), std::string::npos);
  EXPECT_NE(error_of([] { parse_gpt_model("custom:layers=2,depth=8"); }).find("KEY one of layers, d, heads"),
            std::string::npos);
  GptCostOptions o;
  o.model = parse_gpt_model("gpt2-124m");
  o.device = parse_device("custom:flops=1e14,membw=1e12,linkbw=1e10,mem=1e10");
  o.stages = 27;
  EXPECT_EQ(error_of([&] { gpt_cost_model(o); }),
            "27 stages for gpt2-124m of 12 layers: it has 26 units (the embedding, an attention and an MLP half per "
            "layer, the head), so at most 26 stages");
  o.stages = 26;
  EXPECT_NO_THROW(gpt_cost_model(o));
}

}  // namespace
}  // namespace paci::testing
