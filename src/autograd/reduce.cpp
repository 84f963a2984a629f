// Differentiable sum, mean and amax, over all elements or over chosen dimensions.
#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/tensor_math.hpp"
#include "convkit/autograd/functional.hpp"

namespace convkit::ag {

using detail::require;
using I = std::int64_t;

namespace {

// Which dimensions are reduced (negative counts from the end), refusing repeats and strays.
std::vector<bool> reduced_dims(const Shape& shape, const std::vector<int>& dims, const char* op) {
  std::vector<bool> r(static_cast<std::size_t>(shape.rank()), false);
  for (int d : dims) {
    const int dd = d < 0 ? d + shape.rank() : d;
    require(dd >= 0 && dd < shape.rank(), "{}: dim {} is out of range for shape {}", op, d,
            shape);
    require(!r[static_cast<std::size_t>(dd)], "{}: dim {} appears twice in the list", op, d);
    r[static_cast<std::size_t>(dd)] = true;
  }
  return r;
}

Variable reduce(const Variable& x, const std::vector<int>& dims, bool keepdim, bool all,
                bool average, const char* op) {
  require(x.defined(), "{}: the input is undefined", op);
  const Tensor t = x.value();
  detail::require_float(t, op, "input");
  const Shape in = t.shape();
  std::vector<bool> red = all ? std::vector<bool>(static_cast<std::size_t>(in.rank()), true)
                              : reduced_dims(in, dims, op);
  Shape kept = in;  // keepdim shape
  std::vector<I> final_sizes;
  I count = 1;
  for (int d = 0; d < in.rank(); ++d) {
    if (red[static_cast<std::size_t>(d)]) {
      count *= in[d];
      kept[d] = 1;
      if (keepdim && !all) final_sizes.push_back(1);
    } else {
      final_sizes.push_back(in[d]);
    }
  }
  const double scale = average ? 1.0 / static_cast<double>(count) : 1.0;
  Tensor acc = Tensor::zeros(kept, DType::F64);
  {
    const Shape so = detail::broadcast_strides(acc, in);
    double* pa = acc.data<double>();
    detail::visit_float(t.dtype(), op, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      const T* pt = t.data<T>();
      detail::for_each_offset2(in, t.strides(), so, [&](I ot, I oa) { pa[oa] += pt[ot]; });
    });
    for (I i = 0; i < acc.numel(); ++i) pa[i] *= scale;
  }
  Tensor out = acc.to(t.dtype()).reshape(final_sizes);
  return Variable::from_op(
      out, {x},
      [in, kept, scale](const Tensor& g) -> std::vector<Tensor> {
        Tensor gk = g.contiguous().reshape({kept.begin(), kept.end()});
        if (scale != 1.0) gk = detail::map1(gk, "mean", [scale](double v) { return v * scale; });
        return {detail::expand_to(gk, in)};
      },
      op);
}

}  // namespace

Variable sum(const Variable& x) { return reduce(x, {}, false, true, false, "sum"); }
Variable sum(const Variable& x, const std::vector<int>& dims, bool keepdim) {
  return reduce(x, dims, keepdim, false, false, "sum");
}
Variable mean(const Variable& x) { return reduce(x, {}, false, true, true, "mean"); }
Variable mean(const Variable& x, const std::vector<int>& dims, bool keepdim) {
  return reduce(x, dims, keepdim, false, true, "mean");
}

Variable amax(const Variable& x, const std::vector<int>& dims, bool keepdim) {
  const char* op = "amax";
  require(x.defined(), "amax: the input is undefined");
  const Tensor t = x.value();
  detail::require_float(t, op, "input");
  const Shape in = t.shape();
  const std::vector<bool> red = dims.empty()
                                    ? std::vector<bool>(static_cast<std::size_t>(in.rank()), true)
                                    : reduced_dims(in, dims, op);
  Shape kept = in;
  std::vector<I> final_sizes;
  for (int d = 0; d < in.rank(); ++d) {
    if (!red[static_cast<std::size_t>(d)]) {
      final_sizes.push_back(in[d]);
      continue;
    }
    require(in[d] > 0, "amax: cannot reduce dim {} of size 0 (shape {}): the maximum of nothing", d,
            in);
    kept[d] = 1;
    if (keepdim) final_sizes.push_back(1);
  }
  // The maxima and, for the backward, how many elements equal each one (ties share g evenly).
  Tensor mx = Tensor::full(kept, -std::numeric_limits<double>::infinity(), t.dtype());
  Tensor ties = Tensor::zeros(kept, t.dtype());
  const Shape sk = detail::broadcast_strides(mx, in);
  detail::visit_float(t.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* pt = t.data<T>();
    T* pm = mx.data<T>();
    T* pc = ties.data<T>();
    detail::for_each_offset2(in, t.strides(), sk, [&](I ot, I om) {
      const T v = pt[ot];
      if (v > pm[om] || std::isnan(v)) pm[om] = std::isnan(pm[om]) ? pm[om] : v;  // NaN sticks
    });
    detail::for_each_offset2(in, t.strides(), sk, [&](I ot, I om) {
      const T v = pt[ot], m = pm[om];
      if (v == m || (std::isnan(v) && std::isnan(m))) pc[om] += 1;
    });
  });
  Tensor out = mx.reshape(final_sizes);
  return Variable::from_op(
      out, {x},
      [t, mx, ties, in, kept, sk](const Tensor& g) -> std::vector<Tensor> {
        const Tensor gk = g.to(t.dtype()).contiguous().reshape({kept.begin(), kept.end()});
        Tensor dx = Tensor::empty(in, t.dtype());
        detail::visit_float(t.dtype(), "amax", [&](auto* tag) {
          using T = std::remove_pointer_t<decltype(tag)>;
          const T* pt = t.data<T>();
          const T* pm = mx.data<T>();
          const T* pc = ties.data<T>();
          const T* pg = gk.data<T>();
          T* pd = dx.data<T>();
          I i = 0;
          detail::for_each_offset2(in, t.strides(), sk, [&](I ot, I om) {
            const T v = pt[ot], m = pm[om];
            const bool hit = v == m || (std::isnan(v) && std::isnan(m));
            pd[i++] = hit ? pg[om] / pc[om] : T(0);
          });
        });
        return {dx};
      },
      op);
}

}  // namespace convkit::ag
