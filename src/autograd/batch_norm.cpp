// Differentiable batch norm: batch statistics and the running-statistics update like PyTorch,
// on NCHW or channels-last tensors (the output keeps the input's layout), threaded over
// channels (NCHW) or chunks of whole pixels (channels-last).
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

/// Values per channel in each partial sum: every sum over a channel's values (image, then
/// position) adds them in chunks of kChunk, each from zero, and then the chunks' sums in
/// order. Channels-last runs the chunks on the threads, each over whole pixels (contiguous
/// memory, all channels at once); NCHW runs channels on the threads and adds each one's
/// chunks in the same order, so both layouts, and any thread count, give the same bits.
constexpr I kChunk = 512;

/// Whether the passes over x run on the OpenMP threads.
bool threaded(const Layout& l) { return l.c * l.count() >= 32768; }

/// Channels-last: fn(q0, q1) over chunks of pixels on the threads.
template <typename Fn>
void for_pixel_chunks(const Layout& l, Fn&& fn) {
  const I count = l.count(), chunks = (count + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1 && threaded(l))
  for (I k = 0; k < chunks; ++k) fn(k * kChunk, std::min(count, (k + 1) * kChunk));
}

/// Channels-last: `width` sums per pixel, chunk by chunk: add(q0, q1, row) adds pixels
/// [q0, q1) into row (zeros, `width` doubles); the rows are then added in chunk order.
template <typename Add>
std::vector<double> pixel_chunk_sums(const Layout& l, I width, Add&& add) {
  const I chunks = (l.count() + kChunk - 1) / kChunk;
  std::vector<double> rows(static_cast<std::size_t>(chunks * width), 0.0);
  for_pixel_chunks(l, [&](I q0, I q1) { add(q0, q1, rows.data() + q0 / kChunk * width); });
  std::vector<double> total(static_cast<std::size_t>(width), 0.0);
  for (I k = 0; k < chunks; ++k)
    for (I j = 0; j < width; ++j)
      total[static_cast<std::size_t>(j)] += rows[static_cast<std::size_t>(k * width + j)];
  return total;
}

/// NCHW: fn(c) for every channel on the threads. A channel's results never depend on the
/// others, so any thread count gives the same bits.
template <typename Fn>
void for_channels(const Layout& l, Fn&& fn) {
#pragma omp parallel for schedule(static) if (l.c > 1 && threaded(l))
  for (I c = 0; c < l.c; ++c) fn(c);
}

/// NCHW: K sums over channel c's values in (image, position) order, in chunks of kChunk
/// values as pixel_chunk_sums adds them: add(i, part) adds value i's terms into part.
template <std::size_t K, typename Add>
std::array<double, K> channel_chunk_sums(const Layout& l, I c, Add&& add) {
  std::array<double, K> total{}, part{};
  I left = kChunk;
  for (I b = 0; b < l.n; ++b) {
    const I base = (b * l.c + c) * l.s;
    for (I k = 0; k < l.s; ++k) {
      add(base + k, part);
      if (--left == 0) {
        for (std::size_t i = 0; i < K; ++i) total[i] += part[i];
        part = {};
        left = kChunk;
      }
    }
  }
  if (left != kChunk)
    for (std::size_t i = 0; i < K; ++i) total[i] += part[i];
  return total;
}

/// NCHW: out = f(x, g) elementwise over channel c (g may be null: then 0 is passed).
template <typename T, typename F>
void channel_outputs(const Layout& l, I c, const T* x, const T* g, T* out, F&& f) {
  for (I b = 0; b < l.n; ++b) {
    const I base = (b * l.c + c) * l.s;
    for (I k = 0; k < l.s; ++k)
      out[base + k] = static_cast<T>(f(x[base + k], g ? g[base + k] : T(0)));
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
  std::vector<double> scale(cs), shift(cs);  // y = x * scale + shift
  detail::visit_float(tx.dtype(), "batch_norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* px = tx.data<T>();
    T* py = y.data<T>();
    const auto run = [&](I q0, I q1) { return detail::PixelRun<T>{px + q0 * l.c, q1 - q0, l.c}; };
    if (training) {
      // Two passes (mean, then squared deviations): no cancellation for large means.
      std::vector<double> s, v;
      if (l.channels_last) {
        s = pixel_chunk_sums(l, channels, [&](I q0, I q1, double* row) {
          detail::pixels_sum(run(q0, q1), row);
        });
      } else {
        s.resize(cs);
        for_channels(l, [&](I c) {
          s[static_cast<std::size_t>(c)] = channel_chunk_sums<1>(
              l, c, [&](I i, std::array<double, 1>& part) { part[0] += px[i]; })[0];
        });
      }
      for (std::size_t c = 0; c < cs; ++c) mean[c] = s[c] / static_cast<double>(count);
      if (l.channels_last) {
        v = pixel_chunk_sums(l, channels, [&](I q0, I q1, double* row) {
          detail::pixels_squared_deviation(run(q0, q1), mean.data(), row);
        });
      } else {
        v.resize(cs);
        for_channels(l, [&](I c) {
          const double m = mean[static_cast<std::size_t>(c)];
          v[static_cast<std::size_t>(c)] =
              channel_chunk_sums<1>(l, c, [&](I i, std::array<double, 1>& part) {
                const double d = px[i] - m;
                part[0] += d * d;
              })[0];
        });
      }
      for (std::size_t c = 0; c < cs; ++c) {
        invstd[c] = 1.0 / std::sqrt(v[c] / static_cast<double>(count) + eps);
        unbiased[c] = v[c] / static_cast<double>(count - 1);
      }
    } else {
      for (std::size_t c = 0; c < cs; ++c) {
        mean[c] = rm[c];
        invstd[c] = 1.0 / std::sqrt(rv[c] + eps);
      }
    }
    for (std::size_t c = 0; c < cs; ++c) {
      scale[c] = invstd[c] * w[c];
      shift[c] = bv[c] - mean[c] * scale[c];
    }
    if (l.channels_last) {
      for_pixel_chunks(l, [&](I q0, I q1) {
        detail::pixels_affine(run(q0, q1), py + q0 * l.c, scale.data(), shift.data());
      });
      return;
    }
    for_channels(l, [&](I c) {
      const double a = scale[static_cast<std::size_t>(c)], b = shift[static_cast<std::size_t>(c)];
      channel_outputs(l, c, px, static_cast<const T*>(nullptr), py, [&](T xv, T) { return xv * a + b; });
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
          const auto run = [&](I q0, I q1) {
            return detail::PixelRun<T>{px + q0 * l.c, q1 - q0, l.c};
          };
          // Sums of g and of g * xhat per channel, read in one pass over x and g.
          if (l.channels_last) {
            const std::vector<double> sums = pixel_chunk_sums(l, 2 * l.c, [&](I q0, I q1, double* row) {
              detail::pixels_grad_sums(run(q0, q1), pg + q0 * l.c, mean.data(), invstd.data(),
                                       row, row + l.c);
            });
            std::copy(sums.begin(), sums.begin() + l.c, db.begin());
            std::copy(sums.begin() + l.c, sums.end(), dw.begin());
          } else {
            for_channels(l, [&](I c) {
              const auto u = static_cast<std::size_t>(c);
              const double m = mean[u], is = invstd[u];
              const auto sums = channel_chunk_sums<2>(l, c, [&](I i, std::array<double, 2>& part) {
                part[0] += pg[i];
                part[1] += pg[i] * ((px[i] - m) * is);
              });
              db[u] = sums[0];
              dw[u] = sums[1];
            });
          }
          if (!gx) return;
          std::vector<double> mg(cs2), mgx(cs2), k0(cs2);
          for (std::size_t u = 0; u < cs2; ++u) {
            // Training: the batch statistics depend on x too, hence the two mean terms.
            mg[u] = training ? db[u] / cnt : 0;
            mgx[u] = training ? dw[u] / cnt : 0;
            k0[u] = w[u] * invstd[u];
          }
          T* pdx = dx.data<T>();
          if (l.channels_last) {
            for_pixel_chunks(l, [&](I q0, I q1) {
              detail::pixels_grad_input(run(q0, q1), pg + q0 * l.c, pdx + q0 * l.c, mean.data(),
                                        invstd.data(), k0.data(), mg.data(), mgx.data());
            });
            return;
          }
          for_channels(l, [&](I c) {
            const auto u = static_cast<std::size_t>(c);
            channel_outputs(l, c, px, pg, pdx, [&](T xv, T gv) {
              const double xhat = (xv - mean[u]) * invstd[u];
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
