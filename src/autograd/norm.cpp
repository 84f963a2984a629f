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

  // Per channel: the mean and 1/sqrt(var + eps) used to normalize; x is read as
  // (n, channels, spatial) with spatial contiguous.
  const auto cs = static_cast<std::size_t>(channels);
  std::vector<double> mean(cs), invstd(cs);
  const std::vector<double> w = weight.defined() ? weight.value().to_vector()
                                                 : std::vector<double>(cs, 1.0);
  const std::vector<double> bv = bias.defined() ? bias.value().to_vector()
                                                : std::vector<double>(cs, 0.0);
  if (training)
    require(count > 1,
            "batch_norm: expected more than 1 value per channel when training, got input of "
            "shape {}",
            tx.shape().str());
  else
    require(running_mean.defined(),
            "batch_norm: eval mode (training = false) needs running_mean and running_var");
  Tensor y = Tensor::empty(tx.shape(), tx.dtype());
  detail::visit_float(tx.dtype(), "batch_norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* px = tx.data<T>();
    T* py = y.data<T>();
    for (I c = 0; c < channels; ++c) {
      const auto cc = static_cast<std::size_t>(c);
      if (training) {
        double s = 0;
        for (I b = 0; b < n; ++b) {
          const T* row = px + (b * channels + c) * spatial;
          for (I k = 0; k < spatial; ++k) s += row[k];
        }
        const double m = s / static_cast<double>(count);
        double v = 0;  // two passes: no cancellation for large means
        for (I b = 0; b < n; ++b) {
          const T* row = px + (b * channels + c) * spatial;
          for (I k = 0; k < spatial; ++k) v += (row[k] - m) * (row[k] - m);
        }
        mean[cc] = m;
        invstd[cc] = 1.0 / std::sqrt(v / static_cast<double>(count) + eps);
        if (running_mean.defined()) {
          const double unbiased = v / static_cast<double>(count - 1);
          running_mean.set_flat(c, (1 - momentum) * running_mean.get_flat(c) + momentum * m);
          running_var.set_flat(c, (1 - momentum) * running_var.get_flat(c) + momentum * unbiased);
        }
      } else {
        mean[cc] = running_mean.get_flat(c);
        invstd[cc] = 1.0 / std::sqrt(running_var.get_flat(c) + eps);
      }
      // y = x * scale + shift
      const double scale = invstd[cc] * w[cc], shift = bv[cc] - mean[cc] * scale;
      for (I b = 0; b < n; ++b) {
        const T* row = px + (b * channels + c) * spatial;
        T* out = py + (b * channels + c) * spatial;
        for (I k = 0; k < spatial; ++k) out[k] = static_cast<T>(row[k] * scale + shift);
      }
    }
  });
  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.requires_grad();
  return Variable::from_op(
      y, {x, weight, bias},
      [tx, mean, invstd, w, training, gx, gw, gb, n, channels, spatial,
       count](const Tensor& g) -> std::vector<Tensor> {
        const Tensor gc = g.to(tx.dtype()).contiguous();
        Tensor dx = gx ? Tensor::empty(tx.shape(), tx.dtype()) : Tensor();
        const auto cs2 = static_cast<std::size_t>(channels);
        std::vector<double> dw(cs2), db(cs2);
        detail::visit_float(tx.dtype(), "batch_norm", [&](auto* tag) {
          using T = std::remove_pointer_t<decltype(tag)>;
          const T* px = tx.data<T>();
          const T* pg = gc.data<T>();
          for (I c = 0; c < channels; ++c) {
            const auto cc = static_cast<std::size_t>(c);
            const double m = mean[cc], is = invstd[cc];
            double sum_g = 0, sum_gx = 0;  // sum of g and of g * xhat
            for (I b = 0; b < n; ++b) {
              const I base = (b * channels + c) * spatial;
              for (I k = 0; k < spatial; ++k) {
                sum_g += pg[base + k];
                sum_gx += pg[base + k] * ((px[base + k] - m) * is);
              }
            }
            dw[cc] = sum_gx;
            db[cc] = sum_g;
            if (!gx) continue;
            // Training: the batch statistics depend on x too, hence the two mean terms.
            const double cnt = static_cast<double>(count);
            const double mg = training ? sum_g / cnt : 0, mgx = training ? sum_gx / cnt : 0;
            const double k0 = w[cc] * is;
            T* pd = dx.data<T>();
            for (I b = 0; b < n; ++b) {
              const I base = (b * channels + c) * spatial;
              for (I k = 0; k < spatial; ++k) {
                const double xhat = (px[base + k] - m) * is;
                pd[base + k] = static_cast<T>(k0 * (pg[base + k] - mg - xhat * mgx));
              }
            }
          }
        });
        const Shape shape_c{channels};
        return {dx, gw ? Tensor::from_values(shape_c, dw, tx.dtype()) : Tensor(),
                gb ? Tensor::from_values(shape_c, db, tx.dtype()) : Tensor()};
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
