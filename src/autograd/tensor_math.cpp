// Internal tensor math shared by the differentiable ops: sums, broadcasting, permutation.
#include "autograd/tensor_math.hpp"

#include <algorithm>

namespace convkit::detail {

using I = std::int64_t;

void require_float(const Tensor& t, const char* op, const char* arg) {
  require(t.defined(), "{}: {} is undefined", op, arg);
  require(is_floating(t.dtype()), "{}: {} must be F32 or F64, got {}", op, arg,
          dtype_name(t.dtype()));
}

void require_same_dtype(const Tensor& a, const Tensor& b, const char* op, const char* arg_a,
                        const char* arg_b) {
  require(b.defined(), "{}: {} is undefined", op, arg_b);
  require(a.dtype() == b.dtype(), "{}: {} is {} but {} is {}", op, arg_a, dtype_name(a.dtype()),
          arg_b, dtype_name(b.dtype()));
}

Tensor add(const Tensor& a, const Tensor& b) {
  return map2(a, b, "add", [](double x, double y) { return x + y; });
}

void add_into(const Tensor& dst, const Tensor& src) {
  require(dst.shape() == src.shape(), "add_into: shapes {} and {} differ", dst.shape(),
          src.shape());
  const Tensor s = src.to(dst.dtype());
  const MemoryFormat format = dst.memory_format();
  const bool dense = dst.is_contiguous(format) && s.is_contiguous(format);
  visit_float(dst.dtype(), "add_into", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    T* pd = dst.data<T>();
    const T* ps = s.data<T>();
    if (dense)
      parallel_elements(dst.numel(), [&](I i) { pd[i] += ps[i]; });
    else
      for_each_offset2(dst.shape(), dst.strides(), s.strides(),
                       [&](I od, I os) { pd[od] += ps[os]; });
  });
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const int rank = std::max(a.rank(), b.rank());
  std::vector<I> out(static_cast<std::size_t>(rank));
  for (int i = 0; i < rank; ++i) {
    const int ia = i - (rank - a.rank()), ib = i - (rank - b.rank());
    const I sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
    require(sa == sb || sa == 1 || sb == 1,
            "{}: shapes {} and {} cannot be broadcast (size {} vs {} in dimension {} of the "
            "result)",
            op, a, b, sa, sb, i);
    out[static_cast<std::size_t>(i)] = sa == 1 ? sb : sa;
  }
  return Shape(std::span<const I>(out));
}

Shape broadcast_strides(const Tensor& t, const Shape& out) {
  Shape s = out;
  const int lead = out.rank() - t.dim();
  for (int i = 0; i < out.rank(); ++i) {
    const int it = i - lead;
    s[i] = (it >= 0 && t.size(it) != 1) ? t.stride(it) : 0;
  }
  return s;
}

Tensor expand_to(const Tensor& t, const Shape& shape) {
  Tensor out = Tensor::empty(shape, t.dtype());
  const Shape st = broadcast_strides(t, shape);
  visit_float(t.dtype(), "expand", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* pt = t.data<T>();
    T* po = out.data<T>();
    I i = 0;
    for_each_offset2(shape, st, st, [&](I ot, I) { po[i++] = pt[ot]; });
  });
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  Tensor out = Tensor::zeros(shape, g.dtype());
  const Shape so = broadcast_strides(out, g.shape());
  visit_float(g.dtype(), "sum_to", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* pg = g.data<T>();
    std::vector<double> acc(static_cast<std::size_t>(out.numel()), 0.0);
    for_each_offset2(g.shape(), g.strides(), so,
                     [&](I og, I oo) { acc[static_cast<std::size_t>(oo)] += pg[og]; });
    T* po = out.data<T>();
    for (std::size_t i = 0; i < acc.size(); ++i) po[i] = static_cast<T>(acc[i]);
  });
  return out;
}

Tensor permute_copy(const Tensor& t, const std::vector<int>& dims) {
  Shape shape = t.shape(), strides = t.strides();
  for (std::size_t i = 0; i < dims.size(); ++i) {
    shape[static_cast<int>(i)] = t.size(dims[i]);
    strides[static_cast<int>(i)] = t.stride(dims[i]);
  }
  const Tensor view = Tensor::from_storage(t.storage(), t.dtype(), shape, strides, t.offset());
  return view.clone(MemoryFormat::Contiguous);
}

}  // namespace convkit::detail
