// Internal: batch norm's channels-last loops over a block of up to 16 channels, compiled for
// AVX-512, AVX2 and the baseline and picked at run time (GCC target_clones).
#pragma once

#include <cstdint>

namespace convkit::detail {

/// A block of channels-last values: `count` pixels, each `stride` values apart, of which the
/// first `nb` (1..16) are this block's channels. Per channel the arithmetic is the scalar
/// code's, in the same order, in double: vectors only run across channels, so every target
/// gives the same bits (the file is compiled without floating-point contraction).
///
///   x: | c0 c1 .. c(nb-1) | (other channels) | c0 c1 .. | ...     one pixel per stride
template <typename T>
struct RowBlock {
  const T* x;
  std::int64_t count, stride, nb;
};

/// s[j] += x
template <typename T>
void rows_sum(const RowBlock<T>& b, double* s);
/// v[j] += (x - mean[j])^2
template <typename T>
void rows_squared_deviation(const RowBlock<T>& b, const double* mean, double* v);
/// y = x * scale[j] + shift[j]; y has x's layout.
template <typename T>
void rows_affine(const RowBlock<T>& b, T* y, const double* scale, const double* shift);
/// sg[j] += g; sgx[j] += g * ((x - mean[j]) * invstd[j]); g has x's layout.
template <typename T>
void rows_grad_sums(const RowBlock<T>& b, const T* g, const double* mean, const double* invstd,
                    double* sg, double* sgx);
/// dx = k0[j] * (g - mg[j] - (x - mean[j]) * invstd[j] * mgx[j])
template <typename T>
void rows_grad_input(const RowBlock<T>& b, const T* g, T* dx, const double* mean,
                     const double* invstd, const double* k0, const double* mg, const double* mgx);

}  // namespace convkit::detail
