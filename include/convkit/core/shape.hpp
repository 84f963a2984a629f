// Shape: up to five int64 sizes, with element counts computed by overflow-checked arithmetic.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

namespace convkit {

inline constexpr int kMaxRank = 5;

/// a * b, or throws InvalidArgument naming `what` when the product overflows int64.
std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what);
/// a + b, or throws InvalidArgument naming `what` when the sum overflows int64.
std::int64_t checked_add(std::int64_t a, std::int64_t b, const char* what);

/// Sizes of a tensor, outermost first (PyTorch order: N, C, D, H, W whatever the memory format).
/// Rank 0 (a scalar) to 5. Sizes must be >= 0; constructing a negative size throws.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> sizes);
  explicit Shape(std::span<const std::int64_t> sizes);

  int rank() const { return rank_; }
  std::int64_t operator[](int i) const { return sizes_[static_cast<std::size_t>(i)]; }
  std::int64_t& operator[](int i) { return sizes_[static_cast<std::size_t>(i)]; }
  const std::int64_t* begin() const { return sizes_.data(); }
  const std::int64_t* end() const { return sizes_.data() + rank_; }
  std::span<const std::int64_t> span() const { return {sizes_.data(), static_cast<std::size_t>(rank_)}; }

  /// Product of the sizes; throws InvalidArgument if it overflows int64.
  std::int64_t numel() const;
  /// "[2, 3, 4]"
  std::string str() const;

  friend bool operator==(const Shape& a, const Shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a[i] != b[i]) return false;
    return true;
  }

 private:
  std::array<std::int64_t, kMaxRank> sizes_{};
  int rank_ = 0;
};

}  // namespace convkit
