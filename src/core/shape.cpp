// Shape construction and overflow-checked size arithmetic.
#include "convkit/core/shape.hpp"

#include "core/check.hpp"

namespace convkit {

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t r = 0;
  detail::require(!__builtin_mul_overflow(a, b, &r), "{}: {} x {} overflows int64", what, a, b);
  return r;
}

std::int64_t checked_add(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t r = 0;
  detail::require(!__builtin_add_overflow(a, b, &r), "{}: {} + {} overflows int64", what, a, b);
  return r;
}

Shape::Shape(std::span<const std::int64_t> sizes) {
  detail::require(sizes.size() <= static_cast<std::size_t>(kMaxRank),
                  "shape has rank {}; convkit tensors have rank 0 to {}", sizes.size(), kMaxRank);
  rank_ = static_cast<int>(sizes.size());
  for (int i = 0; i < rank_; ++i) {
    detail::require(sizes[static_cast<std::size_t>(i)] >= 0,
                    "shape [{}] has negative size {} in dimension {}",
                    fmt::join(sizes, ", "), sizes[static_cast<std::size_t>(i)], i);
    sizes_[static_cast<std::size_t>(i)] = sizes[static_cast<std::size_t>(i)];
  }
}

Shape::Shape(std::initializer_list<std::int64_t> sizes)
    : Shape(std::span<const std::int64_t>(sizes.begin(), sizes.size())) {}

std::int64_t Shape::numel() const {
  std::int64_t n = 1;
  for (int i = 0; i < rank_; ++i) {
    std::int64_t r = 0;
    detail::require(!__builtin_mul_overflow(n, (*this)[i], &r),
                    "shape {} has an element count that overflows int64", str());
    n = r;
  }
  return n;
}

std::string Shape::str() const { return fmt::format("[{}]", fmt::join(span(), ", ")); }

}  // namespace convkit
