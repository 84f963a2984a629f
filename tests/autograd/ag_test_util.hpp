// Helpers for the autograd tests: random float64 variables and a gradcheck assertion.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "convkit/autograd/functional.hpp"
#include "convkit/autograd/gradcheck.hpp"

namespace convkit::ag::test {

/// A float64 leaf uniform in [lo, hi), requiring a gradient unless told otherwise.
inline Variable rnd(const Shape& shape, std::uint64_t seed, bool requires_grad = true,
                    double lo = -1, double hi = 1) {
  return Variable(Tensor::uniform(shape, lo, hi, seed, DType::F64), requires_grad);
}

using Fn = std::function<Variable(const std::vector<Variable>&)>;

/// gradcheck with the default tolerances, reporting the worst element on failure.
inline void expect_gradcheck(const Fn& fn, const std::vector<Variable>& inputs,
                             GradcheckOptions options = {}) {
  const GradcheckResult r = gradcheck(fn, inputs, options);
  EXPECT_TRUE(r) << r.message;
  EXPECT_GT(r.checked, 0) << r.message;
}

}  // namespace convkit::ag::test
