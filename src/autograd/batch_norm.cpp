// Differentiable batch norm: batch statistics and the running-statistics update like PyTorch,
// on NCHW or channels-last tensors (the output keeps the input's layout), threaded over
// channel blocks.
#include <algorithm>
#include <array>
#include <cmath>

#include "autograd/batch_norm_rows.hpp"
#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"

namespace convkit::ag {

using detail::require;
using I = std::int64_t;

namespace {

void require_channel_vector(const Tensor& t, I channels, const char* arg) {
  require(t.dim() == 1 && t.size(0) == channels,
          "batch_norm: {} must have shape [{}] (one value per channel), got {}", arg, channels,
          t.shape());
  require(is_floating(t.dtype()), "batch_norm: {} must be F32 or F64, got {}", arg,
          dtype_name(t.dtype()));
}

/// A dense (N, C, S...) tensor seen as N x C planes of S contiguous values (NCHW), or as
/// N*S pixels of C contiguous values (channels-last).
struct Layout {
  bool channels_last = false;
  I n = 0, c = 0, s = 0;
  I count() const { return n * s; }  // values per channel
};

constexpr I kBlock = 16;  // channels per task in channels-last: one 64-byte line of floats

/// Calls fn(c0, c1) for blocks of channels, one block per task on the OpenMP threads. A
/// channel's results never depend on the block it lands in (each channel sums its values in
/// the same order whatever the blocks), so any thread count gives the same bits.
template <typename Fn>
void for_channel_blocks(const Layout& l, Fn&& fn) {
  const I block = l.channels_last ? kBlock : 1;
  const I blocks = (l.c + block - 1) / block;
  const bool parallel = blocks > 1 && l.c * l.count() >= 32768;
#pragma omp parallel for schedule(static) if (parallel)
  for (I b = 0; b < blocks; ++b) fn(b * block, std::min(l.c, (b + 1) * block));
}

/// For every channel in [c0, c1): visit(j, value) over its values, j = channel - c0, in a
/// fixed order (image, then position).
template <typename T, typename Visit>
void each_value(const Layout& l, const T* p, I c0, I c1, Visit&& visit) {
  if (l.channels_last) {
    for (I q = 0; q < l.count(); ++q) {
      const T* px = p + q * l.c + c0;
      for (I j = 0; j < c1 - c0; ++j) visit(j, px[j]);
    }
  } else {
    for (I j = 0; j < c1 - c0; ++j)
      for (I b = 0; b < l.n; ++b) {
        const T* row = p + (b * l.c + c0 + j) * l.s;
        for (I k = 0; k < l.s; ++k) visit(j, row[k]);
      }
  }
}

/// out = f(j, x, g) elementwise for channels [c0, c1) (g may be null: then 0 is passed).
template <typename T, typename F>
void each_output(const Layout& l, const T* x, const T* g, T* out, I c0, I c1, F&& f) {
  if (l.channels_last) {
    for (I q = 0; q < l.count(); ++q) {
      const I base = q * l.c + c0;
      for (I j = 0; j < c1 - c0; ++j)
        out[base + j] = static_cast<T>(f(j, x[base + j], g ? g[base + j] : T(0)));
    }
  } else {
    for (I j = 0; j < c1 - c0; ++j)
      for (I b = 0; b < l.n; ++b) {
        const I base = (b * l.c + c0 + j) * l.s;
        for (I k = 0; k < l.s; ++k)
          out[base + k] = static_cast<T>(f(j, x[base + k], g ? g[base + k] : T(0)));
      }
  }
}

}  // namespace

Variable batch_norm(const Variable& x, const Tensor& running_mean, const Tensor& running_var,
                    const Variable& weight, const Variable& bias, bool training, double momentum,
                    double eps) {
  require(x.defined(), "batch_norm: x is undefined");
  require(x.dim() >= 2, "batch_norm: x must be (N, C, ...), got shape {}", x.shape());
  // Dense in its own layout: channels-last stays channels-last (as in PyTorch).
  const MemoryFormat format = x.value().memory_format();
  const Tensor tx = x.value().to(format);
  detail::require_float(tx, "batch_norm", "x");
  Layout l;
  l.channels_last = format == MemoryFormat::ChannelsLast;
  l.n = tx.size(0);
  l.c = tx.size(1);
  l.s = l.n * l.c == 0 ? 0 : tx.numel() / (l.n * l.c);
  const I channels = l.c, count = l.count();
  if (running_mean.defined()) require_channel_vector(running_mean, channels, "running_mean");
  if (running_var.defined()) require_channel_vector(running_var, channels, "running_var");
  require(running_mean.defined() == running_var.defined(),
          "batch_norm: running_mean and running_var must both be given or both be undefined");
  if (weight.defined()) require_channel_vector(weight.value(), channels, "weight");
  if (bias.defined()) require_channel_vector(bias.value(), channels, "bias");
  require(eps > 0, "batch_norm: eps must be positive, got {}", eps);
  if (training)
    require(count > 1,
            "batch_norm: expected more than 1 value per channel when training, got input of "
            "shape {}",
            tx.shape());
  else
    require(running_mean.defined(),
            "batch_norm: eval mode (training = false) needs running_mean and running_var");

  // Per channel: the mean and 1/sqrt(var + eps) that normalize it.
  const auto cs = static_cast<std::size_t>(channels);
  std::vector<double> mean(cs), invstd(cs), unbiased(cs);
  const std::vector<double> w =
      weight.defined() ? weight.value().to_vector() : std::vector<double>(cs, 1.0);
  const std::vector<double> bv =
      bias.defined() ? bias.value().to_vector() : std::vector<double>(cs, 0.0);
  const std::vector<double> rm =
      running_mean.defined() ? running_mean.to_vector() : std::vector<double>();
  const std::vector<double> rv =
      running_var.defined() ? running_var.to_vector() : std::vector<double>();
  Tensor y = Tensor::empty(tx.shape(), tx.dtype(), format);
  detail::visit_float(tx.dtype(), "batch_norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* px = tx.data<T>();
    T* py = y.data<T>();
    for_channel_blocks(l, [&](I c0, I c1) {
      std::array<double, kBlock> s{}, v{}, scale{}, shift{};
      const auto at = [c0](I j) { return static_cast<std::size_t>(c0 + j); };
      if (training) {
        // Two passes (mean, then squared deviations): no cancellation for large means.
        const detail::RowBlock<T> rows{px + c0, count, l.c, c1 - c0};
        if (l.channels_last)
          detail::rows_sum(rows, s.data());
        else
          each_value(l, px, c0, c1, [&](I j, T xv) { s[static_cast<std::size_t>(j)] += xv; });
        for (I j = 0; j < c1 - c0; ++j)
          mean[at(j)] = s[static_cast<std::size_t>(j)] / static_cast<double>(count);
        if (l.channels_last)
          detail::rows_squared_deviation(rows, mean.data() + c0, v.data());
        else
          each_value(l, px, c0, c1, [&](I j, T xv) {
            const double d = xv - mean[at(j)];
            v[static_cast<std::size_t>(j)] += d * d;
          });
        for (I j = 0; j < c1 - c0; ++j) {
          invstd[at(j)] =
              1.0 / std::sqrt(v[static_cast<std::size_t>(j)] / static_cast<double>(count) + eps);
          unbiased[at(j)] = v[static_cast<std::size_t>(j)] / static_cast<double>(count - 1);
        }
      } else {
        for (I j = 0; j < c1 - c0; ++j) {
          mean[at(j)] = rm[at(j)];
          invstd[at(j)] = 1.0 / std::sqrt(rv[at(j)] + eps);
        }
      }
      for (I j = 0; j < c1 - c0; ++j) {  // y = x * scale + shift
        scale[static_cast<std::size_t>(j)] = invstd[at(j)] * w[at(j)];
        shift[static_cast<std::size_t>(j)] =
            bv[at(j)] - mean[at(j)] * scale[static_cast<std::size_t>(j)];
      }
      if (l.channels_last) {
        detail::rows_affine(detail::RowBlock<T>{px + c0, count, l.c, c1 - c0}, py + c0,
                            scale.data(), shift.data());
        return;
      }
      each_output(l, px, static_cast<const T*>(nullptr), py, c0, c1, [&](I j, T xv, T) {
        return xv * scale[static_cast<std::size_t>(j)] + shift[static_cast<std::size_t>(j)];
      });
    });
  });
  if (training && running_mean.defined())
    for (I c = 0; c < channels; ++c) {
      const auto cc = static_cast<std::size_t>(c);
      running_mean.set_flat(c, (1 - momentum) * rm[cc] + momentum * mean[cc]);
      running_var.set_flat(c, (1 - momentum) * rv[cc] + momentum * unbiased[cc]);
    }

  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.requires_grad();
  return Variable::from_op(
      y, {x, weight, bias},
      [tx, l, format, mean, invstd, w, training, gx, gw,
       gb](const Tensor& g) -> std::vector<Tensor> {
        const Tensor gc = g.to(tx.dtype()).to(format);
        Tensor dx = gx ? Tensor::empty(tx.shape(), tx.dtype(), format) : Tensor();
        const auto cs2 = static_cast<std::size_t>(l.c);
        std::vector<double> dw(cs2), db(cs2);
        const double cnt = static_cast<double>(l.count());
        detail::visit_float(tx.dtype(), "batch_norm", [&](auto* tag) {
          using T = std::remove_pointer_t<decltype(tag)>;
          const T* px = tx.data<T>();
          const T* pg = gc.data<T>();
          for_channel_blocks(l, [&](I c0, I c1) {
            // Sums of g and of g * xhat per channel, read in one pass over x and g.
            std::array<double, kBlock> sum_g{}, sum_gx{}, mg{}, mgx{}, k0{};
            const auto at = [c0](I j) { return static_cast<std::size_t>(c0 + j); };
            const detail::RowBlock<T> rows{px + c0, l.count(), l.c, c1 - c0};
            if (l.channels_last) {
              detail::rows_grad_sums(rows, pg + c0, mean.data() + c0, invstd.data() + c0,
                                     sum_g.data(), sum_gx.data());
            } else {
              for (I j = 0; j < c1 - c0; ++j) {
                const double m = mean[at(j)], is = invstd[at(j)];
                double sg = 0, sgx = 0;
                for (I b = 0; b < l.n; ++b) {
                  const I base = (b * l.c + c0 + j) * l.s;
                  for (I k = 0; k < l.s; ++k) {
                    sg += pg[base + k];
                    sgx += pg[base + k] * ((px[base + k] - m) * is);
                  }
                }
                sum_g[static_cast<std::size_t>(j)] = sg;
                sum_gx[static_cast<std::size_t>(j)] = sgx;
              }
            }
            for (I j = 0; j < c1 - c0; ++j) {
              const auto u = static_cast<std::size_t>(j);
              dw[at(j)] = sum_gx[u];
              db[at(j)] = sum_g[u];
              // Training: the batch statistics depend on x too, hence the two mean terms.
              mg[u] = training ? sum_g[u] / cnt : 0;
              mgx[u] = training ? sum_gx[u] / cnt : 0;
              k0[u] = w[at(j)] * invstd[at(j)];
            }
            if (!gx) return;
            if (l.channels_last) {
              detail::rows_grad_input(rows, pg + c0, dx.data<T>() + c0, mean.data() + c0,
                                      invstd.data() + c0, k0.data(), mg.data(), mgx.data());
              return;
            }
            each_output(l, px, pg, dx.data<T>(), c0, c1, [&](I j, T xv, T gv) {
              const auto u = static_cast<std::size_t>(j);
              const double xhat = (xv - mean[at(j)]) * invstd[at(j)];
              return k0[u] * (gv - mg[u] - xhat * mgx[u]);
            });
          });
        });
        const Shape shape_c{l.c};
        return {dx, gw ? Tensor::from_values(shape_c, dw, tx.dtype()) : Tensor(),
                gb ? Tensor::from_values(shape_c, db, tx.dtype()) : Tensor()};
      },
      "batch_norm");
}

}  // namespace convkit::ag
