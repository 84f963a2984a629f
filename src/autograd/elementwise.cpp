// Differentiable add, sub, mul, div (NumPy broadcasting), scalar forms, negation and powers.
#include <cmath>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"

namespace convkit::ag {

using detail::require;
using I = std::int64_t;

namespace {

enum class Op { Add, Sub, Mul, Div };

const char* op_name(Op op) {
  switch (op) {
    case Op::Add:
      return "add";
    case Op::Sub:
      return "sub";
    case Op::Mul:
      return "mul";
    case Op::Div:
      return "div";
  }
  return "?";
}

// out = a (op) b with both read through broadcast strides; out is contiguous, except that
// same-shape operands dense in one layout keep it (a residual add of channels-last tensors
// stays channels-last) and run one flat, vectorizable loop.
Tensor broadcast_apply(const Tensor& a, const Tensor& b, const Shape& shape, Op op) {
  if (a.shape() == shape && b.shape() == shape) {
    const MemoryFormat f = a.memory_format();
    if (a.is_contiguous(f) && b.is_contiguous(f)) {
      switch (op) {  // exact in the element type, as the double path rounds once too
        case Op::Add:
          return detail::map2<true>(a, b, "add", [](auto x, auto y) { return x + y; });
        case Op::Sub:
          return detail::map2<true>(a, b, "sub", [](auto x, auto y) { return x - y; });
        case Op::Mul:
          return detail::map2<true>(a, b, "mul", [](auto x, auto y) { return x * y; });
        case Op::Div:
          return detail::map2<true>(a, b, "div", [](auto x, auto y) { return x / y; });
      }
    }
  }
  Tensor out = Tensor::empty(shape, a.dtype());
  const Shape sa = detail::broadcast_strides(a, shape), sb = detail::broadcast_strides(b, shape);
  detail::visit_float(a.dtype(), op_name(op), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    I i = 0;
    detail::for_each_offset2(shape, sa, sb, [&](I oa, I ob) {
      const T x = pa[oa], y = pb[ob];
      switch (op) {
        case Op::Add:
          po[i++] = x + y;
          break;
        case Op::Sub:
          po[i++] = x - y;
          break;
        case Op::Mul:
          po[i++] = x * y;
          break;
        case Op::Div:
          po[i++] = x / y;
          break;
      }
    });
  });
  return out;
}

Variable binary(const Variable& a, const Variable& b, Op op) {
  const char* name = op_name(op);
  require(a.defined() && b.defined(), "{}: an operand is undefined", name);
  detail::require_float(a.value(), name, "a");
  detail::require_same_dtype(a.value(), b.value(), name, "a", "b");
  const Shape shape = detail::broadcast_shapes(a.shape(), b.shape(), name);
  const Tensor ta = a.value(), tb = b.value();
  Tensor out = broadcast_apply(ta, tb, shape, op);
  const bool ga = a.requires_grad(), gb = b.requires_grad();
  return Variable::from_op(
      out, {a, b},
      [ta, tb, op, ga, gb, shape](const Tensor& g) -> std::vector<Tensor> {
        Tensor da, db;
        switch (op) {
          case Op::Add:
            if (ga) da = detail::sum_to(g, ta.shape());
            if (gb) db = detail::sum_to(g, tb.shape());
            break;
          case Op::Sub:
            if (ga) da = detail::sum_to(g, ta.shape());
            if (gb)
              db = detail::sum_to(detail::map1(g, "sub", [](double v) { return -v; }), tb.shape());
            break;
          case Op::Mul:
            if (ga) da = detail::sum_to(broadcast_apply(g, tb, shape, Op::Mul), ta.shape());
            if (gb) db = detail::sum_to(broadcast_apply(g, ta, shape, Op::Mul), tb.shape());
            break;
          case Op::Div:
            if (ga) da = detail::sum_to(broadcast_apply(g, tb, shape, Op::Div), ta.shape());
            if (gb) {
              // d(a/b)/db = -a / b^2
              const Tensor q = broadcast_apply(
                  broadcast_apply(g, ta, shape, Op::Mul),
                  detail::map1(tb, "div", [](double v) { return v * v; }), shape, Op::Div);
              db = detail::sum_to(detail::map1(q, "div", [](double v) { return -v; }), tb.shape());
            }
            break;
        }
        return {da, db};
      },
      name);
}

}  // namespace

Variable add(const Variable& a, const Variable& b) { return binary(a, b, Op::Add); }
Variable sub(const Variable& a, const Variable& b) { return binary(a, b, Op::Sub); }
Variable mul(const Variable& a, const Variable& b) { return binary(a, b, Op::Mul); }
Variable div(const Variable& a, const Variable& b) { return binary(a, b, Op::Div); }
Variable operator+(const Variable& a, const Variable& b) { return add(a, b); }
Variable operator-(const Variable& a, const Variable& b) { return sub(a, b); }
Variable operator*(const Variable& a, const Variable& b) { return mul(a, b); }
Variable operator/(const Variable& a, const Variable& b) { return div(a, b); }

Variable add(const Variable& a, double b) {
  require(a.defined(), "add: the operand is undefined");
  Tensor out = detail::map1(a.value(), "add", [b](double v) { return v + b; });
  return Variable::from_op(
      out, {a}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; }, "add_scalar");
}

Variable mul(const Variable& a, double b) {
  require(a.defined(), "mul: the operand is undefined");
  Tensor out = detail::map1(a.value(), "mul", [b](double v) { return v * b; });
  return Variable::from_op(
      out, {a},
      [b](const Tensor& g) -> std::vector<Tensor> {
        return {detail::map1(g, "mul", [b](double v) { return v * b; })};
      },
      "mul_scalar");
}

Variable neg(const Variable& a) { return mul(a, -1.0); }

namespace {

// y = f(x) elementwise; dx = g * df(x, y), where df sees the input and the output.
template <typename F, typename DF>
Variable unary(const Variable& x, const char* name, F f, DF df) {
  require(x.defined(), "{}: the operand is undefined", name);
  const Tensor tx = x.value();
  Tensor y = detail::map1(tx, name, f);
  return Variable::from_op(
      y, {x},
      [tx, y, df, name](const Tensor& g) -> std::vector<Tensor> {
        const Tensor d = detail::map2(tx, y, name, df);
        return {detail::map2(g.to(tx.dtype()), d, name, [](double a, double b) { return a * b; })};
      },
      name);
}

}  // namespace

Variable square(const Variable& x) {
  return unary(
      x, "square", [](double v) { return v * v; }, [](double v, double) { return 2 * v; });
}

Variable rsqrt(const Variable& x) {
  // d/dx x^(-1/2) = -1/2 x^(-3/2) = -y^3 / 2; infinite at 0 and NaN below, as in PyTorch.
  return unary(
      x, "rsqrt", [](double v) { return 1.0 / std::sqrt(v); },
      [](double, double y) { return -0.5 * y * y * y; });
}

Variable pow(const Variable& x, double exponent) {
  require(std::isfinite(exponent), "pow: the exponent must be finite, got {}", exponent);
  return unary(
      x, "pow", [exponent](double v) { return std::pow(v, exponent); },
      [exponent](double v, double) {
        // PyTorch: exponent 0 has gradient 0 everywhere (also at v = 0, where pow(0, -1) is inf).
        return exponent == 0 ? 0.0 : exponent * std::pow(v, exponent - 1);
      });
}

}  // namespace convkit::ag
