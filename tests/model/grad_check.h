// Finite-difference helpers shared by the gradient tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "exec/model/param_layout.h"

namespace paci {
namespace testing {

// Central difference of loss() w.r.t. x[i]; x[i] is restored afterwards.
inline double central_difference(double* x, const std::function<double()>& loss, double h) {
  const double saved = *x;
  *x = saved + h;
  const double up = loss();
  *x = saved - h;
  const double down = loss();
  *x = saved;
  return (up - down) / (2.0 * h);
}

struct GradCheckStats {
  int checked = 0;
  int failures = 0;
  double max_abs_err = 0.0;
};

// Compares analytic[i] with the central difference for each i in `indices` (all when
// empty): |a − fd| <= atol + rtol·max(|a|, |fd|). Reports each failure (up to 8) with both
// values, and the worst error.
inline GradCheckStats check_gradient(const std::string& what, double* x, size_t n,
                                     const double* analytic, const std::function<double()>& loss,
                                     std::vector<size_t> indices = {}, double h = 1e-5,
                                     double rtol = 1e-6, double atol = 1e-9) {
  if (indices.empty()) {
    for (size_t i = 0; i < n; ++i) indices.push_back(i);
  }
  GradCheckStats st;
  for (size_t i : indices) {
    const double fd = central_difference(x + i, loss, h);
    const double a = analytic[i];
    const double err = std::fabs(a - fd);
    st.max_abs_err = std::max(st.max_abs_err, err);
    ++st.checked;
    if (err > atol + rtol * std::max(std::fabs(a), std::fabs(fd))) {
      if (++st.failures <= 8) {
        ADD_FAILURE() << what << "[" << i << "]: analytic " << a << " vs finite difference " << fd
                      << " (|diff| " << err << ")";
      }
    }
  }
  EXPECT_EQ(st.failures, 0) << what << ": " << st.failures << " of " << st.checked
                            << " elements off; max |diff| " << st.max_abs_err;
  return st;
}

// Reproducible random fill from the project's own generator.
inline std::vector<double> random_vector(size_t n, uint64_t stream, double scale = 1.0,
                                         double offset = 0.0) {
  NormalStream rng(12345, stream);
  std::vector<double> v(n);
  for (double& x : v) x = offset + scale * rng.next();
  return v;
}

}  // namespace testing
}  // namespace paci
