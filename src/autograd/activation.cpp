// Differentiable activations (relu family, sigmoid family, tanh) and softmax/log_softmax.
// Derivatives at the kinks are PyTorch's: relu and relu6 pass nothing at 0 and 6, hardsigmoid
// nothing at +-3, hardswish x/3 + 1/2 on [-3, 3) (so -1/2 at -3 and 1 at 3: the vectorized
// CPU kernel's choice, which every tensor of more than a few elements takes; PyTorch's scalar
// tail loop would give 3/2 at exactly 3).
#include <algorithm>
#include <cmath>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"

namespace convkit::ag {

using detail::require;
using I = std::int64_t;

namespace {

// y = f(x); dx = g * df(x) where df sees the input x.
template <typename F, typename DF>
Variable pointwise(const Variable& x, const char* name, F f, DF df) {
  require(x.defined(), "{}: the input is undefined", name);
  const Tensor tx = x.value();
  Tensor y = detail::map1(tx, name, f);
  return Variable::from_op(
      std::move(y), {x},
      [tx, df, name](const Tensor& g) -> std::vector<Tensor> {
        return {detail::map2(g.to(tx.dtype()), tx, name,
                             [&](double gv, double xv) { return gv * df(xv); })};
      },
      name);
}

// The same for piecewise-linear activations, computed in the element type: every operation
// is exact (compares, selects, products with 0 or 1), so the results equal the double-precision
// ones, and the branch-free loops vectorize. f(x) and df(x, g) = g * f'(x) take T.
template <typename F, typename DF>
Variable piecewise(const Variable& x, const char* name, F f, DF dfg) {
  require(x.defined(), "{}: the input is undefined", name);
  const Tensor tx = x.value();
  Tensor y = detail::map1<true>(tx, name, f);
  return Variable::from_op(
      std::move(y), {x},
      [tx, dfg, name](const Tensor& g) -> std::vector<Tensor> {
        return {detail::map2<true>(tx, g.to(tx.dtype()), name, dfg)};
      },
      name);
}

double sigmoid_of(double v) { return 1.0 / (1.0 + std::exp(-v)); }

}  // namespace

Variable relu(const Variable& x) {
  return piecewise(
      x, "relu", [](auto v) { return v < 0 ? decltype(v)(0) : v; },  // NaN stays NaN, as in PyTorch
      [](auto v, auto g) { return v > 0 ? g : decltype(g)(0); });
}

Variable relu6(const Variable& x) {
  return piecewise(
      x, "relu6",
      [](auto v) {
        using T = decltype(v);
        return std::min(std::max(v, T(0)), T(6));
      },
      [](auto v, auto g) { return ((v > 0) && (v < 6)) ? g : decltype(g)(0); });
}

Variable leaky_relu(const Variable& x, double negative_slope) {
  return pointwise(
      x, "leaky_relu", [negative_slope](double v) { return v > 0 ? v : v * negative_slope; },
      [negative_slope](double v) { return v > 0 ? 1.0 : negative_slope; });
}

Variable sigmoid(const Variable& x) {
  return pointwise(x, "sigmoid", sigmoid_of, [](double v) {
    const double s = sigmoid_of(v);
    return s * (1 - s);
  });
}

Variable softplus(const Variable& x) {
  // PyTorch's threshold 20: above it log1p(exp(x)) rounds to x in float32.
  return pointwise(
      x, "softplus", [](double v) { return v > 20 ? v : std::log1p(std::exp(v)); },
      [](double v) { return v > 20 ? 1.0 : sigmoid_of(v); });
}

Variable abs(const Variable& x) {
  return piecewise(
      x, "abs", [](auto v) { return v < 0 ? -v : v; },
      [](auto v, auto g) {  // sign(x) * g: nothing passes at 0, as in PyTorch
        return v > 0 ? g : (v < 0 ? -g : decltype(g)(0));
      });
}

Variable hardsigmoid(const Variable& x) {
  return pointwise(
      x, "hardsigmoid", [](double v) { return std::min(std::max(v + 3, 0.0), 6.0) / 6; },
      [](double v) { return v > -3 && v < 3 ? 1.0 / 6 : 0.0; });
}

Variable hardswish(const Variable& x) {
  return pointwise(
      x, "hardswish", [](double v) { return v * std::min(std::max(v + 3, 0.0), 6.0) / 6; },
      [](double v) {
        if (v < -3) return 0.0;
        if (v < 3) return v / 3 + 0.5;
        return 1.0;
      });
}

Variable silu(const Variable& x) {
  return pointwise(
      x, "silu", [](double v) { return v * sigmoid_of(v); },
      [](double v) {
        const double s = sigmoid_of(v);
        return s * (1 + v * (1 - s));
      });
}

Variable tanh(const Variable& x) {
  return pointwise(
      x, "tanh", [](double v) { return std::tanh(v); },
      [](double v) {
        const double t = std::tanh(v);
        return 1 - t * t;
      });
}

namespace {

// View of a contiguous tensor as (outer, n, inner) around dimension `dim`.
struct Lanes {
  I outer = 1, n = 1, inner = 1;
};

Lanes lanes_of(const Shape& s, int dim) {
  Lanes l;
  for (int d = 0; d < s.rank(); ++d) {
    if (d < dim)
      l.outer *= s[d];
    else if (d == dim)
      l.n = s[d];
    else
      l.inner *= s[d];
  }
  return l;
}

int normalize_dim(int dim, int rank, const char* op, const Shape& s) {
  const int r = std::max(rank, 1);
  const int d = dim < 0 ? dim + r : dim;
  require(d >= 0 && d < r, "{}: dim {} is out of range for shape {}", op, dim, s);
  return d;
}

// softmax (log = false) or log_softmax (log = true) of contiguous x along its lanes, in double.
template <typename T>
void softmax_lanes(const T* x, T* y, const Lanes& l, bool log) {
  for (I o = 0; o < l.outer; ++o)
    for (I i = 0; i < l.inner; ++i) {
      const I base = o * l.n * l.inner + i;
      double mx = -INFINITY;
      for (I k = 0; k < l.n; ++k) mx = std::max(mx, static_cast<double>(x[base + k * l.inner]));
      double s = 0;
      for (I k = 0; k < l.n; ++k) s += std::exp(static_cast<double>(x[base + k * l.inner]) - mx);
      const double ls = std::log(s);
      for (I k = 0; k < l.n; ++k) {
        const double z = static_cast<double>(x[base + k * l.inner]) - mx;
        y[base + k * l.inner] = static_cast<T>(log ? z - ls : std::exp(z) / s);
      }
    }
}

// dx for softmax:     y * (g - sum(g * y));  for log_softmax: g - exp(y) * sum(g).
template <typename T>
void softmax_lanes_backward(const T* g, const T* y, T* dx, const Lanes& l, bool log) {
  for (I o = 0; o < l.outer; ++o)
    for (I i = 0; i < l.inner; ++i) {
      const I base = o * l.n * l.inner + i;
      double s = 0;
      for (I k = 0; k < l.n; ++k) {
        const I at = base + k * l.inner;
        s += log ? static_cast<double>(g[at]) : static_cast<double>(g[at]) * y[at];
      }
      for (I k = 0; k < l.n; ++k) {
        const I at = base + k * l.inner;
        const double gv = g[at], yv = y[at];
        dx[at] = static_cast<T>(log ? gv - std::exp(yv) * s : yv * (gv - s));
      }
    }
}

Variable softmax_like(const Variable& x, int dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  require(x.defined(), "{}: the input is undefined", name);
  const Tensor tx = x.value().contiguous();
  detail::require_float(tx, name, "input");
  const int d = normalize_dim(dim, tx.dim(), name, tx.shape());
  const Lanes l = tx.dim() == 0 ? Lanes{} : lanes_of(tx.shape(), d);
  Tensor y = Tensor::empty(tx.shape(), tx.dtype());
  detail::visit_float(tx.dtype(), name, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    softmax_lanes<T>(tx.data<T>(), y.data<T>(), l, log);
  });
  return Variable::from_op(
      y, {x},
      [y, l, log, name](const Tensor& g) -> std::vector<Tensor> {
        const Tensor gc = g.to(y.dtype()).contiguous();
        Tensor dx = Tensor::empty(y.shape(), y.dtype());
        detail::visit_float(y.dtype(), name, [&](auto* tag) {
          using T = std::remove_pointer_t<decltype(tag)>;
          softmax_lanes_backward<T>(gc.data<T>(), y.data<T>(), dx.data<T>(), l, log);
        });
        return {dx};
      },
      name);
}

}  // namespace

Variable softmax(const Variable& x, int dim) { return softmax_like(x, dim, false); }
Variable log_softmax(const Variable& x, int dim) { return softmax_like(x, dim, true); }

}  // namespace convkit::ag
