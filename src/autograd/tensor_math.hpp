// Internal: the small tensor math the differentiable ops share (typed loops, broadcasting).
#pragma once

#include <string>
#include <type_traits>
#include <vector>

#include "convkit/core/tensor.hpp"
#include "core/check.hpp"
#include "core/tensor_iter.hpp"

namespace convkit::detail {

/// Calls fn(T*) with a typed null pointer for F32 or F64; other dtypes are refused, naming op.
template <typename Fn>
decltype(auto) visit_float(DType t, const char* op, Fn&& fn) {
  if (t == DType::F32) return fn(static_cast<float*>(nullptr));
  if (t == DType::F64) return fn(static_cast<double*>(nullptr));
  throw InvalidArgument(std::string(op) + ": expected an F32 or F64 tensor, got " +
                        std::string(dtype_name(t)));
}

/// Refuses an undefined or non-float tensor, naming the op and the argument.
void require_float(const Tensor& t, const char* op, const char* arg);
/// Refuses two tensors of different dtypes.
void require_same_dtype(const Tensor& a, const Tensor& b, const char* op, const char* arg_a,
                        const char* arg_b);

/// a + b (same shape, any layouts), contiguous.
Tensor add(const Tensor& a, const Tensor& b);
/// dst += src (same shape); dst must be contiguous and own its storage.
void add_into(const Tensor& dst, const Tensor& src);

/// NumPy broadcasting of two shapes; throws naming op and both shapes when they do not match.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
/// Strides that read `t` as if expanded to `out` (0 on broadcast dimensions).
Shape broadcast_strides(const Tensor& t, const Shape& out);
/// `t` expanded (copied) to `shape`, contiguous.
Tensor expand_to(const Tensor& t, const Shape& shape);
/// `g` summed over the dimensions that broadcasting `shape` to g's shape added or stretched.
Tensor sum_to(const Tensor& g, const Shape& shape);
/// The dimensions of `t` reordered (out dimension i is t's dims[i]), contiguous.
Tensor permute_copy(const Tensor& t, const std::vector<int>& dims);

/// Runs body(i) for i in [0, n) on the OpenMP threads when n is large enough to pay.
template <typename Body>
void parallel_elements(std::int64_t n, Body&& body) {
#pragma omp parallel for schedule(static) if (n >= 65536)
  for (std::int64_t i = 0; i < n; ++i) body(i);
}

/// out[i] = f(x[i]) elementwise, same dtype; f takes and returns double, or with kTyped the
/// element type itself (for exact operations whose loop then vectorizes: min, max, selects,
/// products). The output keeps x's
/// layout when x is dense in it (channels-last stays channels-last, as in PyTorch), and is
/// contiguous otherwise.
template <bool kTyped = false, typename F>
Tensor map1(const Tensor& x, const char* op, F f) {
  require_float(x, op, "input");
  const MemoryFormat format = x.memory_format();
  const bool dense = x.is_contiguous(format);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), dense ? format : MemoryFormat::Contiguous);
  visit_float(x.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (dense) {  // same memory order on both sides: one flat loop
      if constexpr (kTyped)
        parallel_elements(x.numel(), [&](std::int64_t i) { po[i] = f(px[i]); });
      else
        parallel_elements(x.numel(), [&](std::int64_t i) {
          po[i] = static_cast<T>(f(static_cast<double>(px[i])));
        });
      return;
    }
    std::int64_t i = 0;
    for_each_offset2(x.shape(), x.strides(), x.strides(), [&](std::int64_t ox, std::int64_t) {
      if constexpr (kTyped)
        po[i++] = f(px[ox]);
      else
        po[i++] = static_cast<T>(f(static_cast<double>(px[ox])));
    });
  });
  return out;
}

/// out[i] = f(a[i], b[i]) for same-shape a and b (any layouts). The output keeps their
/// layout when both are dense in the same one, and is contiguous otherwise.
template <bool kTyped = false, typename F>
Tensor map2(const Tensor& a, const Tensor& b, const char* op, F f) {
  require_float(a, op, "a");
  require_same_dtype(a, b, op, "a", "b");
  require(a.shape() == b.shape(), "{}: shapes {} and {} differ", op, a.shape(),
          b.shape());
  const MemoryFormat format = a.memory_format();
  const bool dense = a.is_contiguous(format) && b.is_contiguous(format);
  Tensor out = Tensor::empty(a.shape(), a.dtype(), dense ? format : MemoryFormat::Contiguous);
  visit_float(a.dtype(), op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    if (dense) {
      if constexpr (kTyped)
        parallel_elements(a.numel(), [&](std::int64_t i) { po[i] = f(pa[i], pb[i]); });
      else
        parallel_elements(a.numel(), [&](std::int64_t i) {
          po[i] = static_cast<T>(f(static_cast<double>(pa[i]), static_cast<double>(pb[i])));
        });
      return;
    }
    std::int64_t i = 0;
    for_each_offset2(a.shape(), a.strides(), b.strides(), [&](std::int64_t oa, std::int64_t ob) {
      if constexpr (kTyped)
        po[i++] = f(pa[oa], pb[ob]);
      else
        po[i++] = static_cast<T>(f(static_cast<double>(pa[oa]), static_cast<double>(pb[ob])));
    });
  });
  return out;
}

}  // namespace convkit::detail
