// --beta1, --beta2 and --eps of `paci train` reach AdamW: after one update the checkpoint's
// moments and weights are those of AdamW's formulas with the flags' values, and values out of
// range are refused with one line.
#include <cmath>
#include <string>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "exec/model/param_layout.h"
#include "exec/runtime/checkpoint.h"
#include "tests/support/cli_runner.h"

namespace {

using ::testing::HasSubstr;
using paci::testing::CliResult;
using paci::testing::fresh_path;
using paci::testing::run_paci;

const std::string kSmall = "--data synthetic --vocab 256 --layers 2 --seq 16 --batch 2 --microbatches 2";

TEST(OptimizerFlags, OutOfRangeGivesOneLineAndExitTwo) {
  for (const char* flag : {"--beta1 1", "--beta1 -0.1", "--beta2 1", "--beta2 nan", "--eps 0", "--eps 2"}) {
    CliResult r = run_paci(fmt::format("train --steps 1 {} {}", flag, kSmall));
    EXPECT_EQ(r.code, 2) << flag << "\n" << r.err;
    EXPECT_EQ(paci::testing::count_lines(r.err), 1) << flag << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(std::string(flag).substr(0, std::string(flag).find(' ')))) << flag;
  }
}

TEST(OptimizerFlags, ReachAdamW) {
  const double lr = 1e-3, b1 = 0.8, b2 = 0.999, eps = 0.5;
  const std::string dir = fresh_path("ck");
  CliResult r = run_paci(fmt::format("train --steps 1 --warmup 0 --lr {} --beta1 {} --beta2 {} --eps {} --save {} {}",
                                     lr, b1, b2, eps, dir, kSmall));
  ASSERT_EQ(r.code, 0) << r.err;
  paci::CheckpointMeta meta;
  paci::Snapshot snap;
  paci::load_checkpoint(dir, meta, snap);
  EXPECT_EQ(meta.adamw.beta1, b1);
  EXPECT_EQ(meta.adamw.beta2, b2);
  EXPECT_EQ(meta.adamw.eps, eps);
  ASSERT_EQ(snap.params.size(), 1u);
  const paci::ParamLayout layout = paci::make_param_layout(meta.model, meta.partition[0]);
  const std::vector<float>&p = snap.params[0], &m = snap.m[0], &v = snap.v[0];
  // One update from zero moments with gradient g: m = (1-b1) g, v = (1-b2) g^2, and (on
  // vectors: no weight decay; LayerNorm weights start at 1, biases at 0, and the step moves
  // them by at most lr) p = p0 - lr * mhat / (sqrt(vhat) + eps), mhat = m/(1-b1), vhat =
  // v/(1-b2). Tolerances: the kernel computes in float, so v/g^2 is good to a few ulp (1e-5
  // relative) and p to a few ulp of 1.0 (1e-6 absolute); eps = 1e-8 instead of 0.5 would move
  // p by up to lr/3 for |g| near 0.25, far outside them.
  // The kernel forms 1 - beta in float, from the betas rounded to float (0.999f is 1.3e-5
  // relatively off in 1 - beta2), so the expected moments use the same.
  const double one_b1 = 1.0f - static_cast<float>(b1), one_b2 = 1.0f - static_cast<float>(b2);
  int checked = 0;
  double worst_default_eps = 0;
  for (const paci::TensorInfo& t : layout.tensors) {
    if (t.is_2d) continue;
    for (size_t i = t.offset; i < t.offset + t.size; ++i) {
      const double g = m[i] / one_b1;
      if (std::abs(g) < 1e-12) continue;
      EXPECT_NEAR(v[i] / (g * g), one_b2, 1e-5 * one_b2) << t.name << " element " << i - t.offset;
      const double p0 = std::round(p[i]);
      const double mhat = m[i] / (1 - b1), vhat = v[i] / (1 - b2);
      EXPECT_NEAR(p[i], p0 - lr * mhat / (std::sqrt(vhat) + eps), 1e-6) << t.name << " element " << i - t.offset;
      worst_default_eps = std::max(worst_default_eps, std::abs(p[i] - (p0 - lr * mhat / (std::sqrt(vhat) + 1e-8))));
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
  EXPECT_GT(worst_default_eps, 1e-4);  // the check above tells eps = 0.5 from the default
}

}  // namespace
