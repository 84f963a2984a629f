// gradcheck: analytic gradients of a weighted sum of the output against central differences.
#include "convkit/autograd/gradcheck.hpp"

#include <cmath>

#include <fmt/format.h>

#include "core/check.hpp"

namespace convkit::ag {

using detail::require;

namespace {

// sum(out * weights) in double.
double weighted_sum(const Tensor& out, const Tensor& weights) {
  const std::vector<double> o = out.to_vector(), w = weights.to_vector();
  double s = 0;
  for (std::size_t i = 0; i < o.size(); ++i) s += o[i] * w[i];
  return s;
}

// Fresh leaves holding copies of the inputs' values, so perturbations never reach the caller.
std::vector<Variable> copies(const std::vector<Variable>& inputs) {
  std::vector<Variable> out;
  for (const Variable& v : inputs)
    out.push_back(v.defined() ? Variable(v.value().clone(), v.requires_grad()) : Variable());
  return out;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Variable(const std::vector<Variable>&)>& fn,
                          const std::vector<Variable>& inputs, const GradcheckOptions& options) {
  for (std::size_t i = 0; i < inputs.size(); ++i)
    require(!inputs[i].defined() || !inputs[i].requires_grad() ||
                inputs[i].dtype() == DType::F64,
            "gradcheck: input {} requires a gradient but is {}, not F64", i,
            inputs[i].defined() ? dtype_name(inputs[i].dtype()) : "undefined");

  // Analytic: backward with grad_output = R is the gradient of sum(out * R).
  std::vector<Variable> leaves = copies(inputs);
  const Variable out = fn(leaves);
  require(out.defined(), "gradcheck: the function returned an undefined variable");
  const Tensor weights =
      Tensor::uniform(out.shape(), -1, 1, options.seed, out.dtype());
  if (out.requires_grad()) out.backward(weights);

  GradcheckResult r;
  r.excess = -INFINITY;
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
    const Tensor analytic = leaves[i].grad();
    for (std::int64_t e = 0; e < inputs[i].numel(); ++e) {
      auto eval = [&](double delta) {
        std::vector<Variable> args = inputs;
        const Tensor v = inputs[i].value().clone();
        args[i] = Variable(v, false);
        v.set_flat(e, v.get_flat(e) + delta);
        return weighted_sum(fn(args).value(), weights);
      };
      const double numeric = (eval(options.eps) - eval(-options.eps)) / (2 * options.eps);
      const double a = analytic.defined() ? analytic.get_flat(e) : 0.0;
      const double excess =
          std::abs(a - numeric) - (options.atol + options.rtol * std::abs(numeric));
      ++r.checked;
      if (excess > r.excess || std::isnan(excess)) {
        r.excess = std::isnan(excess) ? INFINITY : excess;
        r.worst_input = static_cast<int>(i);
        r.worst_position = e;
        r.analytic = a;
        r.numeric = numeric;
      }
    }
  }
  if (r.checked == 0) {
    r.excess = 0;
    r.message = "gradcheck: no input requires a gradient; nothing was checked";
    return r;
  }
  r.ok = r.excess <= 0;
  r.message = fmt::format(
      "gradcheck {}: {} elements checked; worst at input {} position {}: analytic {:.10g}, "
      "numeric {:.10g} (excess {:.3g} over atol {} + rtol {})",
      r.ok ? "passed" : "FAILED", r.checked, r.worst_input, r.worst_position, r.analytic,
      r.numeric, r.excess, options.atol, options.rtol);
  return r;
}

}  // namespace convkit::ag
