// Differentiable batch norm (batch statistics and running-statistics update like PyTorch),
// dropout and pad.
#include <cmath>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"
#include "convkit/ops/pad.hpp"

namespace convkit::ag {

using detail::require;
using I = std::int64_t;

namespace {

void require_channel_vector(const Tensor& t, I channels, const char* arg) {
  require(t.dim() == 1 && t.size(0) == channels,
          "batch_norm: {} must have shape [{}] (one value per channel), got {}", arg, channels,
          t.shape().str());
  require(is_floating(t.dtype()), "batch_norm: {} must be F32 or F64, got {}", arg,
          dtype_name(t.dtype()));
}

}  // namespace

Variable batch_norm(const Variable& x, const Tensor& running_mean, const Tensor& running_var,
                    const Variable& weight, const Variable& bias, bool training, double momentum,
                    double eps) {
  require(x.defined(), "batch_norm: x is undefined");
  require(x.dim() >= 2, "batch_norm: x must be (N, C, ...), got shape {}", x.shape().str());
  const Tensor tx = x.value().contiguous();
  detail::require_float(tx, "batch_norm", "x");
  const I n = tx.size(0), channels = tx.size(1);
  const I spatial = n * channels == 0 ? 0 : tx.numel() / (n * channels);
  const I count = n * spatial;
  if (running_mean.defined()) require_channel_vector(running_mean, channels, "running_mean");
  if (running_var.defined()) require_channel_vector(running_var, channels, "running_var");
  require(running_mean.defined() == running_var.defined(),
          "batch_norm: running_mean and running_var must both be given or both be undefined");
  if (weight.defined()) require_channel_vector(weight.value(), channels, "weight");
  if (bias.defined()) require_channel_vector(bias.value(), channels, "bias");
  require(eps > 0, "batch_norm: eps must be positive, got {}", eps);

  // Per channel: the mean and 1/sqrt(var + eps) used to normalize.
  std::vector<double> mean(static_cast<std::size_t>(channels)),
      invstd(static_cast<std::size_t>(channels));
  const std::vector<double> xs = tx.to_vector();
  auto at = [&](I b, I c, I s) { return static_cast<std::size_t>((b * channels + c) * spatial + s); };
  if (training) {
    require(count > 1,
            "batch_norm: expected more than 1 value per channel when training, got input of "
            "shape {}",
            tx.shape().str());
    for (I c = 0; c < channels; ++c) {
      double s = 0;
      for (I b = 0; b < n; ++b)
        for (I k = 0; k < spatial; ++k) s += xs[at(b, c, k)];
      const double m = s / static_cast<double>(count);
      double v = 0;
      for (I b = 0; b < n; ++b)
        for (I k = 0; k < spatial; ++k) v += (xs[at(b, c, k)] - m) * (xs[at(b, c, k)] - m);
      const double biased = v / static_cast<double>(count);
      mean[static_cast<std::size_t>(c)] = m;
      invstd[static_cast<std::size_t>(c)] = 1.0 / std::sqrt(biased + eps);
      if (running_mean.defined()) {
        const double unbiased = v / static_cast<double>(count - 1);
        const auto ci = c;
        running_mean.set_flat(ci, (1 - momentum) * running_mean.get_flat(ci) + momentum * m);
        running_var.set_flat(ci, (1 - momentum) * running_var.get_flat(ci) + momentum * unbiased);
      }
    }
  } else {
    require(running_mean.defined(),
            "batch_norm: eval mode (training = false) needs running_mean and running_var");
    for (I c = 0; c < channels; ++c) {
      mean[static_cast<std::size_t>(c)] = running_mean.get_flat(c);
      invstd[static_cast<std::size_t>(c)] = 1.0 / std::sqrt(running_var.get_flat(c) + eps);
    }
  }
  const std::vector<double> w = weight.defined() ? weight.value().to_vector()
                                                 : std::vector<double>(static_cast<std::size_t>(channels), 1.0);
  const std::vector<double> bv = bias.defined() ? bias.value().to_vector()
                                                : std::vector<double>(static_cast<std::size_t>(channels), 0.0);
  Tensor y = Tensor::empty(tx.shape(), tx.dtype());
  detail::visit_float(tx.dtype(), "batch_norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* py = y.data<T>();
    for (I b = 0; b < n; ++b)
      for (I c = 0; c < channels; ++c) {
        const auto cc = static_cast<std::size_t>(c);
        for (I k = 0; k < spatial; ++k)
          py[at(b, c, k)] = static_cast<T>((xs[at(b, c, k)] - mean[cc]) * invstd[cc] * w[cc] + bv[cc]);
      }
  });
  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.requires_grad();
  return Variable::from_op(
      y, {x, weight, bias},
      [tx, mean, invstd, w, training, gx, gw, gb, n, channels, spatial,
       count](const Tensor& g) -> std::vector<Tensor> {
        const std::vector<double> gs = g.to_vector(), xs2 = tx.to_vector();
        auto idx = [&](I b, I c, I s) {
          return static_cast<std::size_t>((b * channels + c) * spatial + s);
        };
        std::vector<double> dx(gx ? gs.size() : 0), dw(static_cast<std::size_t>(channels)),
            db(static_cast<std::size_t>(channels));
        for (I c = 0; c < channels; ++c) {
          const auto cc = static_cast<std::size_t>(c);
          double sum_g = 0, sum_gx = 0;
          for (I b = 0; b < n; ++b)
            for (I k = 0; k < spatial; ++k) {
              const double xhat = (xs2[idx(b, c, k)] - mean[cc]) * invstd[cc];
              sum_g += gs[idx(b, c, k)];
              sum_gx += gs[idx(b, c, k)] * xhat;
            }
          dw[cc] = sum_gx;
          db[cc] = sum_g;
          if (!gx) continue;
          const double cnt = static_cast<double>(count);
          for (I b = 0; b < n; ++b)
            for (I k = 0; k < spatial; ++k) {
              const std::size_t i = idx(b, c, k);
              const double xhat = (xs2[i] - mean[cc]) * invstd[cc];
              // Training: the batch statistics depend on x too, hence the two mean terms.
              dx[i] = training ? w[cc] * invstd[cc] * (gs[i] - sum_g / cnt - xhat * sum_gx / cnt)
                               : w[cc] * invstd[cc] * gs[i];
            }
        }
        const Shape cs{channels};
        return {gx ? Tensor::from_values(tx.shape(), dx, tx.dtype()) : Tensor(),
                gw ? Tensor::from_values(cs, dw, tx.dtype()) : Tensor(),
                gb ? Tensor::from_values(cs, db, tx.dtype()) : Tensor()};
      },
      "batch_norm");
}

Variable dropout(const Variable& x, double p, bool training, std::uint64_t seed) {
  require(x.defined(), "dropout: x is undefined");
  require(p >= 0 && p <= 1, "dropout: p must be in [0, 1], got {}", p);
  if (!training || p == 0) return x;
  detail::require_float(x.value(), "dropout", "x");
  // mask = 0 where dropped, 1/(1-p) where kept (all dropped when p == 1).
  const Tensor u = Tensor::uniform(x.shape(), 0, 1, seed, DType::F64);
  const double scale = p < 1 ? 1.0 / (1.0 - p) : 0.0;
  const Tensor mask = detail::map1(u, "dropout", [p, scale](double v) { return v < p ? 0.0 : scale; })
                          .to(x.dtype());
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
