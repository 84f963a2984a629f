// Finite-difference gradient check in float64 for any differentiable function of Variables.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "convkit/autograd/variable.hpp"

namespace convkit::ag {

/// Tolerances of gradcheck: an element passes when |analytic - numeric| <= atol + rtol*|numeric|.
struct GradcheckOptions {
  double eps = 1e-6;   // central-difference step
  double atol = 1e-5;
  double rtol = 1e-3;
  std::uint64_t seed = 1;  // of the random weights the output is dotted with
};

/// Outcome of gradcheck; converts to bool, message() says where it is worst.
struct GradcheckResult {
  bool ok = true;
  int worst_input = -1;             // index into the inputs, -1 when nothing was checked
  std::int64_t worst_position = -1;  // flat logical position inside that input
  double analytic = 0, numeric = 0;  // both derivatives there
  double excess = 0;  // |analytic - numeric| - (atol + rtol*|numeric|); > 0 on failure
  std::int64_t checked = 0;  // elements compared
  std::string message;
  explicit operator bool() const { return ok; }
};

/// Compares the analytic gradient of L = sum(fn(inputs) * R), R uniform in [-1, 1) from
/// `seed`, with central differences (L(x+eps) - L(x-eps)) / (2 eps), for every element of
/// every input that requires a gradient. Inputs must be F64. fn must be deterministic (no
/// side effects that change later calls). The inputs' own gradients are left untouched.
///   auto r = gradcheck([](const std::vector<Variable>& v) { return ag::tanh(v[0]); }, {x});
///   EXPECT_TRUE(r) << r.message;
GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                          const std::vector<Variable>& inputs, const GradcheckOptions& options = {});

}  // namespace convkit::ag
