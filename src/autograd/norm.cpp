// Differentiable dropout and pad (batch norm is in batch_norm.cpp).
#include <cmath>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"
#include "convkit/ops/pad.hpp"

namespace convkit::ag {

using detail::require;
using I = std::int64_t;

Variable dropout(const Variable& x, double p, bool training, std::uint64_t seed) {
  require(x.defined(), "dropout: x is undefined");
  require(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got {}", p);
  if (!training || p == 0) return x;
  detail::require_float(x.value(), "dropout", "x");
  // mask = 0 where dropped, 1/(1-p) where kept (all dropped when p == 1).
  const Tensor u = Tensor::uniform(x.shape(), 0, 1, seed, DType::F64);
  const double scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
  const Tensor mask = detail::map1(u, "dropout", [p, scale](double v) {
                        return v < p ? 0.0 : scale;
                      }).to(x.dtype());
  Tensor y = detail::map2(x.value(), mask, "dropout", [](double a, double m) { return a * m; });
  return Variable::from_op(
      y, {x},
      [mask](const Tensor& g) -> std::vector<Tensor> {
        return {detail::map2(g.to(mask.dtype()), mask, "dropout",
                             [](double a, double m) { return a * m; })};
      },
      "dropout");
}

Variable pad(const Variable& x, const std::vector<I>& before, const std::vector<I>& after,
             PaddingMode mode, double value) {
  require(x.defined(), "pad: x is undefined");
  const Shape in = x.shape();
  Tensor y = convkit::pad(x.value(), before, after, mode, value);
  return Variable::from_op(
      y, {x},
      [in, before, after, mode](const Tensor& g) -> std::vector<Tensor> {
        return {pad_backward(g, in, before, after, mode)};
      },
      "pad");
}

}  // namespace convkit::ag
