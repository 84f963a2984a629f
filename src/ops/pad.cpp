// pad and pad_backward for every padding mode, by mapping each output coordinate to its source.
#include "convkit/ops/pad.hpp"

#include <array>

#include "core/check.hpp"
#include "core/tensor_iter.hpp"
#include "ops/pad_check.hpp"

namespace convkit {

using detail::require;
using I = std::int64_t;

namespace detail {

const char* padding_mode_name(PaddingMode mode) {
  switch (mode) {
    case PaddingMode::Zeros: return "zeros";
    case PaddingMode::Reflect: return "reflect";
    case PaddingMode::Replicate: return "replicate";
    case PaddingMode::Circular: return "circular";
  }
  return "?";
}

void check_padding_fits(PaddingMode mode, I n, I before, I after, int dim, const char* what) {
  require(before >= 0 && after >= 0,
          "{}: padding must be non-negative, got ({}, {}) in spatial dimension {}", what, before,
          after, dim);
  if (mode == PaddingMode::Reflect)
    require(before < n && after < n,
            "{}: reflect padding ({}, {}) must be smaller than the input size {} in spatial "
            "dimension {}",
            what, before, after, n, dim);
  if (mode == PaddingMode::Circular)
    require(before <= n && after <= n,
            "{}: circular padding ({}, {}) must not exceed the input size {} in spatial "
            "dimension {}",
            what, before, after, n, dim);
  if (mode == PaddingMode::Replicate)
    require(n > 0 || (before == 0 && after == 0),
            "{}: replicate padding of an empty input in spatial dimension {}", what, dim);
}

}  // namespace detail

namespace {

// Source coordinate of padded coordinate j for a size-n dimension, or -1 for constant padding.
I source_of(PaddingMode mode, I j, I before, I n) {
  I i = j - before;
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PaddingMode::Zeros: return -1;
    case PaddingMode::Reflect: return i < 0 ? -i : 2 * (n - 1) - i;
    case PaddingMode::Replicate: return i < 0 ? 0 : n - 1;
    case PaddingMode::Circular: return ((i % n) + n) % n;
  }
  return -1;
}

struct PadGeometry {
  int nd = 0;
  std::array<I, 3> before{}, after{};
  Shape padded;
};

PadGeometry geometry(const Shape& src, const std::vector<I>& before, const std::vector<I>& after,
                     PaddingMode mode) {
  require(src.rank() >= 3 && src.rank() <= 5,
          "pad: src must have rank 3-5 (N, C, spatial...), got shape {}", src);
  PadGeometry g;
  g.nd = src.rank() - 2;
  auto pick = [&](const std::vector<I>& v, const char* name, std::size_t i) {
    require(v.size() == 1 || v.size() == static_cast<std::size_t>(g.nd),
            "pad: {} has {} values; expected 1 or {}", name, v.size(), g.nd);
    return v.size() == 1 ? v[0] : v[i];
  };
  g.padded = src;
  for (int i = 0; i < g.nd; ++i) {
    const auto u = static_cast<std::size_t>(i);
    g.before[u] = pick(before, "before", u);
    g.after[u] = pick(after, "after", u);
    detail::check_padding_fits(mode, src[i + 2], g.before[u], g.after[u], i, "pad");
    g.padded[i + 2] = checked_add(checked_add(src[i + 2], g.before[u], "pad"), g.after[u], "pad");
  }
  return g;
}

// Calls fn(dst_offset, src_offset or -1) for every element of the padded tensor.
template <typename Fn>
void walk(const PadGeometry& g, const Shape& src_shape, const Shape& src_strides,
          const Shape& dst_strides, PaddingMode mode, Fn&& fn) {
  // Per spatial dimension, the source coordinate of each padded coordinate, precomputed.
  std::array<std::vector<I>, 3> map;
  for (int i = 0; i < g.nd; ++i) {
    const auto u = static_cast<std::size_t>(i);
    for (I j = 0; j < g.padded[i + 2]; ++j)
      map[u].push_back(source_of(mode, j, g.before[u], src_shape[i + 2]));
  }
  std::array<I, 3> ext{1, 1, 1}, ss{0, 0, 0}, ds{0, 0, 0};
  for (int i = 0; i < g.nd; ++i) {
    const auto u = static_cast<std::size_t>(3 - g.nd + i);
    ext[u] = g.padded[i + 2];
    ss[u] = src_strides[i + 2];
    ds[u] = dst_strides[i + 2];
  }
  auto src_at = [&](int slot, I j) -> I {
    const int i = slot - (3 - g.nd);
    return i < 0 ? 0 : map[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
  };
  for (I n = 0; n < g.padded[0]; ++n)
    for (I c = 0; c < g.padded[1]; ++c)
      for (I a = 0; a < ext[0]; ++a)
        for (I b = 0; b < ext[1]; ++b)
          for (I w = 0; w < ext[2]; ++w) {
            const I sa = src_at(0, a), sb = src_at(1, b), sw = src_at(2, w);
            const I dst = n * dst_strides[0] + c * dst_strides[1] + a * ds[0] + b * ds[1] + w * ds[2];
            const bool inside = sa >= 0 && sb >= 0 && sw >= 0;
            fn(dst, inside ? n * src_strides[0] + c * src_strides[1] + sa * ss[0] + sb * ss[1] +
                                 sw * ss[2]
                           : I{-1});
          }
}

}  // namespace

Tensor pad(const Tensor& src, const std::vector<I>& before, const std::vector<I>& after,
           PaddingMode mode, double value) {
  require(src.defined(), "pad: src is undefined");
  const PadGeometry g = geometry(src.shape(), before, after, mode);
  Tensor dst = Tensor::empty(g.padded, src.dtype(), src.memory_format());
  detail::visit_dtype(src.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* s = src.data<T>();
    T* d = dst.data<T>();
    const T fill = static_cast<T>(value);
    walk(g, src.shape(), src.strides(), dst.strides(), mode,
         [&](I od, I os) { d[od] = os < 0 ? fill : s[os]; });
  });
  return dst;
}

Tensor pad_backward(const Tensor& diff_dst, const Shape& src_shape, const std::vector<I>& before,
                    const std::vector<I>& after, PaddingMode mode) {
  require(diff_dst.defined(), "pad_backward: diff_dst is undefined");
  const PadGeometry g = geometry(src_shape, before, after, mode);
  require(diff_dst.shape() == g.padded, "pad_backward: diff_dst has shape {}, expected {}",
          diff_dst.shape(), g.padded);
  require(is_floating(diff_dst.dtype()), "pad_backward: needs F32 or F64, got {}",
          dtype_name(diff_dst.dtype()));
  // Sums in double in a dense buffer, then rounds once, so the result does not depend on
  // how many padded elements fold onto one source element.
  const Shape dense = dense_strides(src_shape, MemoryFormat::Contiguous);
  std::vector<double> acc(static_cast<std::size_t>(src_shape.numel()), 0.0);
  Tensor diff_src = Tensor::empty(src_shape, diff_dst.dtype(), diff_dst.memory_format());
  detail::visit_dtype(diff_dst.dtype(), [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* d = diff_dst.data<T>();
    walk(g, src_shape, dense, diff_dst.strides(), mode, [&](I od, I os) {
      if (os >= 0) acc[static_cast<std::size_t>(os)] += static_cast<double>(d[od]);
    });
    T* out = diff_src.data<T>();
    std::size_t i = 0;
    detail::for_each_offset2(src_shape, diff_src.strides(), diff_src.strides(),
                             [&](I o, I) { out[o] = static_cast<T>(acc[i++]); });
  });
  return diff_src;
}

}  // namespace convkit
