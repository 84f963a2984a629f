// Differentiable 2-D pooling: max (padding, dilation, ceil_mode), average (count_include_pad,
// ceil_mode) and adaptive average, with PyTorch's output sizes and window rules.
#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"

namespace convkit::ag {

using detail::require;
using I = std::int64_t;

namespace {

// One pooling problem on (planes, ih, iw) -> (planes, oh, ow), planes = N*C.
struct Pool {
  I planes = 0, ih = 0, iw = 0, oh = 0, ow = 0;
  I kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool ceil_mode = false, count_include_pad = true;
  Shape out_shape;
};

// One value for both dimensions, or (h, w).
std::pair<I, I> pair_of(const std::vector<I>& v, const char* op, const char* arg) {
  require(v.size() == 1 || v.size() == 2, "{}: {} needs 1 or 2 values, got {}", op, arg, v.size());
  return {v[0], v.size() == 2 ? v[1] : v[0]};
}

// PyTorch's pooling_output_shape: floor or ceil, and the last window must start inside the
// input or its left padding.
I pooled_size(I in, I k, I pad, I stride, I dilation, bool ceil_mode) {
  const I span = in + 2 * pad - dilation * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  I out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

Pool make_pool(const Tensor& x, const Pool2dOptions& o, bool max, const char* op) {
  require(x.dim() == 3 || x.dim() == 4, "{}: x must be (N, C, H, W) or (C, H, W), got shape {}", op,
          x.shape());
  detail::require_float(x, op, "x");
  Pool p;
  const int r = x.dim();
  p.ih = x.size(r - 2);
  p.iw = x.size(r - 1);
  p.planes = p.ih * p.iw == 0 ? 0 : x.numel() / (p.ih * p.iw);
  std::tie(p.kh, p.kw) = pair_of(o.kernel, op, "kernel");
  std::tie(p.sh, p.sw) = o.stride.empty() ? std::pair{p.kh, p.kw} : pair_of(o.stride, op, "stride");
  std::tie(p.ph, p.pw) = pair_of(o.padding, op, "padding");
  if (max) {
    std::tie(p.dh, p.dw) = pair_of(o.dilation, op, "dilation");
  } else {
    // PyTorch's average pooling has no dilation: refuse one rather than ignore it.
    const auto [dh, dw] = pair_of(o.dilation, op, "dilation");
    require(dh == 1 && dw == 1, "{}: average pooling has no dilation (as in PyTorch), got ({}, {})",
            op, dh, dw);
  }
  p.ceil_mode = o.ceil_mode;
  p.count_include_pad = o.count_include_pad;
  require(p.kh > 0 && p.kw > 0 && p.sh > 0 && p.sw > 0 && p.dh > 0 && p.dw > 0,
          "{}: kernel ({}, {}), stride ({}, {}) and dilation ({}, {}) must be positive", op, p.kh,
          p.kw, p.sh, p.sw, p.dh, p.dw);
  require(p.ph >= 0 && p.pw >= 0 && p.ph <= p.kh / 2 && p.pw <= p.kw / 2,
          "{}: padding ({}, {}) must be between 0 and half the kernel ({}, {})", op, p.ph, p.pw,
          p.kh, p.kw);
  p.oh = pooled_size(p.ih, p.kh, p.ph, p.sh, p.dh, p.ceil_mode);
  p.ow = pooled_size(p.iw, p.kw, p.pw, p.sw, p.dw, p.ceil_mode);
  require(p.oh > 0 && p.ow > 0,
          "{}: output size ({}, {}) is too small for input {} with kernel ({}, {}), padding "
          "({}, {}), dilation ({}, {})",
          op, p.oh, p.ow, x.shape(), p.kh, p.kw, p.ph, p.pw, p.dh, p.dw);
  p.out_shape = x.shape();
  p.out_shape[r - 2] = p.oh;
  p.out_shape[r - 1] = p.ow;
  return p;
}

// Max pooling keeps, per output, the flat (h*iw + w) position of its maximum for backward;
// the first maximum wins and a NaN takes over, as in PyTorch's CPU kernel.
Variable max_pool(const Variable& x, const Pool2dOptions& o) {
  require(x.defined(), "max_pool2d: x is undefined");
  const Tensor tx = x.value().contiguous();
  const Pool p = make_pool(tx, o, true, "max_pool2d");
  Tensor y = Tensor::empty(p.out_shape, tx.dtype());
  auto argmax = std::make_shared<std::vector<I>>(static_cast<std::size_t>(y.numel()));
  detail::visit_float(tx.dtype(), "max_pool2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* px = tx.data<T>();
    T* py = y.data<T>();
    for (I c = 0; c < p.planes; ++c)
      for (I oy = 0; oy < p.oh; ++oy)
        for (I ox = 0; ox < p.ow; ++ox) {
          T best = -std::numeric_limits<T>::infinity();
          I where = -1;
          for (I a = 0; a < p.kh; ++a) {
            const I h = oy * p.sh - p.ph + a * p.dh;
            if (h < 0 || h >= p.ih) continue;
            for (I b = 0; b < p.kw; ++b) {
              const I w = ox * p.sw - p.pw + b * p.dw;
              if (w < 0 || w >= p.iw) continue;
              const T v = px[(c * p.ih + h) * p.iw + w];
              if (where < 0 || v > best || std::isnan(v)) {
                best = v;
                where = h * p.iw + w;
              }
            }
          }
          const I at = (c * p.oh + oy) * p.ow + ox;
          py[at] = best;
          (*argmax)[static_cast<std::size_t>(at)] = where;
        }
  });
  return Variable::from_op(
      y, {x},
      [p, argmax, shape = tx.shape(), dtype = tx.dtype()](const Tensor& g) -> std::vector<Tensor> {
        const Tensor gc = g.to(dtype).contiguous();
        Tensor dx = Tensor::zeros(shape, dtype);
        detail::visit_float(dtype, "max_pool2d", [&](auto* tag) {
          using T = std::remove_pointer_t<decltype(tag)>;
          const T* pg = gc.data<T>();
          T* pd = dx.data<T>();
          for (I c = 0; c < p.planes; ++c)
            for (I k = 0; k < p.oh * p.ow; ++k) {
              const I where = (*argmax)[static_cast<std::size_t>(c * p.oh * p.ow + k)];
              if (where >= 0) pd[c * p.ih * p.iw + where] += pg[c * p.oh * p.ow + k];
            }
        });
        return {dx};
      },
      "max_pool2d");
}

// A window [h0, h1) x [w0, w1) of the input and the number its sum is divided by.
struct Window {
  I h0, h1, w0, w1;
  double divisor;
};

Window avg_window(const Pool& p, I oy, I ox) {
  I h0 = oy * p.sh - p.ph, w0 = ox * p.sw - p.pw;
  I h1 = std::min(h0 + p.kh, p.ih + p.ph), w1 = std::min(w0 + p.kw, p.iw + p.pw);
  const I with_pad = (h1 - h0) * (w1 - w0);
  h0 = std::max<I>(h0, 0);
  w0 = std::max<I>(w0, 0);
  h1 = std::min(h1, p.ih);
  w1 = std::min(w1, p.iw);
  const I inside = std::max<I>(h1 - h0, 0) * std::max<I>(w1 - w0, 0);
  return {h0, h1, w0, w1, static_cast<double>(p.count_include_pad ? with_pad : inside)};
}

Window adaptive_window(const Pool& p, I oy, I ox) {
  const I h0 = oy * p.ih / p.oh, h1 = ((oy + 1) * p.ih + p.oh - 1) / p.oh;
  const I w0 = ox * p.iw / p.ow, w1 = ((ox + 1) * p.iw + p.ow - 1) / p.ow;
  return {h0, h1, w0, w1, static_cast<double>((h1 - h0) * (w1 - w0))};
}

// Average over windows given by `window(p, oy, ox)`; backward spreads g / divisor evenly.
template <typename WindowFn>
Variable average(const Variable& x, const Pool& p, const Tensor& tx, WindowFn window,
                 const char* name) {
  Tensor y = Tensor::empty(p.out_shape, tx.dtype());
  detail::visit_float(tx.dtype(), name, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* px = tx.data<T>();
    T* py = y.data<T>();
    for (I c = 0; c < p.planes; ++c)
      for (I oy = 0; oy < p.oh; ++oy)
        for (I ox = 0; ox < p.ow; ++ox) {
          const Window win = window(p, oy, ox);
          double s = 0;
          for (I h = win.h0; h < win.h1; ++h)
            for (I w = win.w0; w < win.w1; ++w) s += px[(c * p.ih + h) * p.iw + w];
          py[(c * p.oh + oy) * p.ow + ox] =
              win.h0 >= win.h1 || win.w0 >= win.w1 ? T(0) : static_cast<T>(s / win.divisor);
        }
  });
  return Variable::from_op(
      y, {x},
      [p, window, name, shape = tx.shape(),
       dtype = tx.dtype()](const Tensor& g) -> std::vector<Tensor> {
        const Tensor gc = g.to(dtype).contiguous();
        Tensor dx = Tensor::zeros(shape, dtype);
        detail::visit_float(dtype, name, [&](auto* tag) {
          using T = std::remove_pointer_t<decltype(tag)>;
          const T* pg = gc.data<T>();
          T* pd = dx.data<T>();
          for (I c = 0; c < p.planes; ++c)
            for (I oy = 0; oy < p.oh; ++oy)
              for (I ox = 0; ox < p.ow; ++ox) {
                const Window win = window(p, oy, ox);
                if (win.h0 >= win.h1 || win.w0 >= win.w1) continue;  // a window all padding
                const T share = static_cast<T>(pg[(c * p.oh + oy) * p.ow + ox] / win.divisor);
                for (I h = win.h0; h < win.h1; ++h)
                  for (I w = win.w0; w < win.w1; ++w) pd[(c * p.ih + h) * p.iw + w] += share;
              }
        });
        return {dx};
      },
      name);
}

}  // namespace

Variable max_pool2d(const Variable& x, const Pool2dOptions& options) {
  return max_pool(x, options);
}

Variable avg_pool2d(const Variable& x, const Pool2dOptions& options) {
  require(x.defined(), "avg_pool2d: x is undefined");
  const Tensor tx = x.value().contiguous();
  const Pool p = make_pool(tx, options, false, "avg_pool2d");
  return average(x, p, tx, avg_window, "avg_pool2d");
}

Variable adaptive_avg_pool2d(const Variable& x, I oh, I ow) {
  require(x.defined(), "adaptive_avg_pool2d: x is undefined");
  const Tensor tx = x.value().contiguous();
  require(tx.dim() == 3 || tx.dim() == 4,
          "adaptive_avg_pool2d: x must be (N, C, H, W) or (C, H, W), got shape {}",
          tx.shape());
  detail::require_float(tx, "adaptive_avg_pool2d", "x");
  require(oh > 0 && ow > 0, "adaptive_avg_pool2d: output size ({}, {}) must be positive", oh, ow);
  Pool p;
  const int r = tx.dim();
  p.ih = tx.size(r - 2);
  p.iw = tx.size(r - 1);
  require(p.ih > 0 && p.iw > 0, "adaptive_avg_pool2d: input {} has an empty spatial size",
          tx.shape());
  p.planes = tx.numel() / (p.ih * p.iw);
  p.oh = oh;
  p.ow = ow;
  p.out_shape = tx.shape();
  p.out_shape[r - 2] = oh;
  p.out_shape[r - 1] = ow;
  return average(x, p, tx, adaptive_window, "adaptive_avg_pool2d");
}

}  // namespace convkit::ag
