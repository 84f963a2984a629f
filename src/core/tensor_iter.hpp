// Internal: walking the elements of strided tensors in logical order.
#pragma once

#include <array>
#include <cstdint>

#include "convkit/core/dtype.hpp"
#include "convkit/core/shape.hpp"
#include "convkit/core/error.hpp"

namespace convkit::detail {

/// Calls fn(offset_a, offset_b) for every logical index of `shape`, in row-major
/// order, where each offset is the index dotted with that tensor's strides.
/// An odometer keeps both offsets current so no index is decomposed per element.
template <typename Fn>
void for_each_offset2(const Shape& shape, const Shape& sa, const Shape& sb, Fn&& fn) {
  const int rank = shape.rank();
  if (shape.numel() == 0) return;
  std::array<std::int64_t, kMaxRank> idx{};
  std::int64_t oa = 0, ob = 0;
  const std::int64_t inner = rank == 0 ? 1 : shape[rank - 1];
  const std::int64_t ia = rank == 0 ? 0 : sa[rank - 1], ib = rank == 0 ? 0 : sb[rank - 1];
  for (;;) {
    for (std::int64_t i = 0; i < inner; ++i) fn(oa + i * ia, ob + i * ib);
    int d = rank - 2;
    for (; d >= 0; --d) {
      oa += sa[d];
      ob += sb[d];
      if (++idx[static_cast<std::size_t>(d)] < shape[d]) break;
      oa -= sa[d] * shape[d];
      ob -= sb[d] * shape[d];
      idx[static_cast<std::size_t>(d)] = 0;
    }
    if (d < 0) return;
  }
}

/// Calls fn(T*) with a typed null pointer for the tensor's dtype, so that one generic
/// lambda serves all four element types.
template <typename Fn>
decltype(auto) visit_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::F32: return fn(static_cast<float*>(nullptr));
    case DType::F64: return fn(static_cast<double*>(nullptr));
    case DType::I64: return fn(static_cast<std::int64_t*>(nullptr));
    case DType::U8: return fn(static_cast<std::uint8_t*>(nullptr));
  }
  throw InvalidArgument("unknown dtype");
}

}  // namespace convkit::detail
