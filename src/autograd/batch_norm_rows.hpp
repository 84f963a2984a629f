// Internal: batch norm's channels-last loops over a run of whole pixels, compiled for
// AVX-512, AVX2 and the baseline and picked at run time (GCC target_clones).
#pragma once

#include <cstdint>

namespace convkit::detail {

/// `count` channels-last pixels of `c` values each, pixel q at x + q * c (a dense run). Per
/// channel the arithmetic is the scalar code's, in the same order (pixel after pixel), in
/// double: vectors only run across channels, so every target gives the same bits (the file
/// is compiled without floating-point contraction).
///
///   x: | c0 c1 .. c(c-1) | c0 c1 .. c(c-1) | ...     one pixel after another
template <typename T>
struct PixelRun {
  const T* x;
  std::int64_t count, c;
};

/// s[j] += x
template <typename T>
void pixels_sum(const PixelRun<T>& r, double* s);
/// v[j] += (x - mean[j])^2
template <typename T>
void pixels_squared_deviation(const PixelRun<T>& r, const double* mean, double* v);
/// y = x * scale[j] + shift[j]; y has x's layout.
template <typename T>
void pixels_affine(const PixelRun<T>& r, T* y, const double* scale, const double* shift);
/// sg[j] += g; sgx[j] += g * ((x - mean[j]) * invstd[j]); g has x's layout.
template <typename T>
void pixels_grad_sums(const PixelRun<T>& r, const T* g, const double* mean,
                      const double* invstd, double* sg, double* sgx);
/// dx = k0[j] * (g - mg[j] - (x - mean[j]) * invstd[j] * mgx[j])
template <typename T>
void pixels_grad_input(const PixelRun<T>& r, const T* g, T* dx, const double* mean,
                       const double* invstd, const double* k0, const double* mg,
                       const double* mgx);

}  // namespace convkit::detail
