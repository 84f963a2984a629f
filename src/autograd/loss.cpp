// Differentiable losses: cross-entropy over class indices (label smoothing) and MSE.
#include <cmath>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"

namespace convkit::ag {

using detail::require;
using I = std::int64_t;

namespace {

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
    case Reduction::None: return "none";
  }
  return "?";
}

// Per-position losses reduced to a scalar, or kept with the targets' shape.
Tensor reduce_losses(const std::vector<double>& losses, Reduction r, const Shape& none_shape,
                     DType dtype) {
  if (r == Reduction::None) return Tensor::from_values(none_shape, losses, dtype);
  double s = 0;
  for (double v : losses) s += v;
  if (r == Reduction::Mean) s /= static_cast<double>(losses.size());
  return Tensor::from_values(Shape{}, {s}, dtype);
}

// d(reduced)/d(loss at position p) times the incoming gradient.
std::vector<double> per_sample_grad(const Tensor& g, Reduction r, std::size_t n) {
  if (r == Reduction::None) return g.to_vector();
  const double gv = g.get_flat(0) / (r == Reduction::Mean ? static_cast<double>(n) : 1.0);
  return std::vector<double>(n, gv);
}

}  // namespace

Variable cross_entropy(const Variable& logits, const Tensor& targets, Reduction reduction,
                       double label_smoothing) {
  require(logits.defined(), "cross_entropy: logits are undefined");
  require(targets.defined(), "cross_entropy: targets are undefined");
  detail::require_float(logits.value(), "cross_entropy", "logits");
  require(logits.dim() >= 2, "cross_entropy: logits must be (N, C) or (N, C, d...), got shape {}",
          logits.shape());
  const I n = logits.size(0), classes = logits.size(1);
  // Targets are logits' shape without C: (N) or (N, d...).
  std::vector<I> target_sizes{n};
  for (int d = 2; d < logits.dim(); ++d) target_sizes.push_back(logits.size(d));
  const Shape target_shape{std::span<const I>(target_sizes)};
  require(targets.shape() == target_shape,
          "cross_entropy: targets must have shape {} (one class index per position of logits "
          "{}), got {}",
          target_shape, logits.shape(), targets.shape());
  require(classes > 0, "cross_entropy: logits {} have no classes", logits.shape());
  const I positions = target_shape.numel(), spatial = n == 0 ? 0 : positions / n;
  require(reduction != Reduction::Mean || positions > 0,
          "cross_entropy: mean reduction of an empty batch");
  require(label_smoothing >= 0 && label_smoothing <= 1,
          "cross_entropy: label_smoothing must be in [0, 1], got {}", label_smoothing);
  std::vector<I> target(static_cast<std::size_t>(positions));
  for (I i = 0; i < positions; ++i) {
    const double t = targets.get_flat(i);
    require(t == std::floor(t) && t >= 0 && t < static_cast<double>(classes),
            "cross_entropy: target {} at position {} is not a class index in [0, {})", t, i,
            classes);
    target[static_cast<std::size_t>(i)] = static_cast<I>(t);
  }
  // Position p = (i, s) reads logits (i, c, s) at (i*C + c)*S + s. log-softmax over c, then
  // loss_p = -sum_c q_pc log p_pc with q = (1 - ls) onehot(t) + ls / C.
  auto at = [classes, spatial](I p, I c) {
    return static_cast<std::size_t>(((p / spatial) * classes + c) * spatial + p % spatial);
  };
  const std::vector<double> z = logits.value().to_vector();
  std::vector<double> logp(z.size()), losses(static_cast<std::size_t>(positions));
  const double ls = label_smoothing, uniform = ls / static_cast<double>(classes);
  for (I p = 0; p < positions; ++p) {
    double mx = -INFINITY;
    for (I c = 0; c < classes; ++c) mx = std::max(mx, z[at(p, c)]);
    double s = 0;
    for (I c = 0; c < classes; ++c) s += std::exp(z[at(p, c)] - mx);
    const double lse = mx + std::log(s);
    double loss = 0;
    for (I c = 0; c < classes; ++c) {
      const double lp = z[at(p, c)] - lse;
      logp[at(p, c)] = lp;
      const double q = (c == target[static_cast<std::size_t>(p)] ? 1 - ls : 0) + uniform;
      loss -= q * lp;
    }
    losses[static_cast<std::size_t>(p)] = loss;
  }
  const DType dtype = logits.dtype();
  const Shape logits_shape = logits.shape();
  Tensor y = reduce_losses(losses, reduction, target_shape, dtype);
  return Variable::from_op(
      y, {logits},
      [logp, target, positions, classes, at, ls, uniform, reduction, dtype,
       logits_shape](const Tensor& g) -> std::vector<Tensor> {
        const std::vector<double> gp =
            per_sample_grad(g, reduction, static_cast<std::size_t>(positions));
        std::vector<double> d(logp.size());
        for (I p = 0; p < positions; ++p)
          for (I c = 0; c < classes; ++c) {
            const std::size_t k = at(p, c);
            const double q = (c == target[static_cast<std::size_t>(p)] ? 1 - ls : 0) + uniform;
            d[k] = gp[static_cast<std::size_t>(p)] * (std::exp(logp[k]) - q);
          }
        return {Tensor::from_values(logits_shape, d, dtype)};
      },
      std::string("cross_entropy(") + reduction_name(reduction) + ")");
}

Variable mse_loss(const Variable& input, const Variable& target, Reduction reduction) {
  require(input.defined() && target.defined(), "mse_loss: input or target is undefined");
  detail::require_float(input.value(), "mse_loss", "input");
  detail::require_same_dtype(input.value(), target.value(), "mse_loss", "input", "target");
  require(input.shape() == target.shape(), "mse_loss: input {} and target {} differ in shape",
          input.shape(), target.shape());
  require(reduction != Reduction::Mean || input.numel() > 0,
          "mse_loss: mean reduction of an empty input");
  const Tensor diff = detail::map2(input.value(), target.value(), "mse_loss",
                                   [](double a, double b) { return a - b; });
  const Tensor sq = detail::map1(diff, "mse_loss", [](double v) { return v * v; });
  Tensor y;
  if (reduction == Reduction::None) {
    y = sq;
  } else {
    const std::vector<double> v = sq.to_vector();
    double s = 0;
    for (double e : v) s += e;
    if (reduction == Reduction::Mean) s /= static_cast<double>(v.size());
    y = Tensor::from_values(Shape{}, {s}, input.dtype());
  }
  const bool gi = input.requires_grad(), gt = target.requires_grad();
  const double scale = reduction == Reduction::Mean ? 2.0 / static_cast<double>(diff.numel()) : 2.0;
  return Variable::from_op(
      y, {input, target},
      [diff, reduction, scale, gi, gt](const Tensor& g) -> std::vector<Tensor> {
        Tensor d;
        if (reduction == Reduction::None) {
          d = detail::map2(g.to(diff.dtype()), diff, "mse_loss",
                           [](double gv, double dv) { return 2 * gv * dv; });
        } else {
          const double gv = g.get_flat(0) * scale;
          d = detail::map1(diff, "mse_loss", [gv](double dv) { return gv * dv; });
        }
        Tensor dt;
        if (gt) dt = detail::map1(d, "mse_loss", [](double v) { return -v; });
        return {gi ? d : Tensor(), dt};
      },
      std::string("mse_loss(") + reduction_name(reduction) + ")");
}

}  // namespace convkit::ag
