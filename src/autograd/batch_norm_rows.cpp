// Batch norm's channels-last loops, one clone per SIMD target (see batch_norm_rows.hpp).
// Built with -ffp-contract=off: a fused multiply-add would change the bits per target.
#include "autograd/batch_norm_rows.hpp"

namespace convkit::detail {

namespace {
using I = std::int64_t;
}  // namespace

// Not under the sanitizers: the clones' ifunc resolvers run while the program is being
// relocated, before the sanitizer runtime exists, and crash in their instrumentation. Not
// with clang 14 (the fuzz build), which cannot clone templates. Those builds get the
// baseline, which gives the same bits without contraction.
#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define CONVKIT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CONVKIT_CLONES
#endif

// Each loop walks the run pixel by pixel, its channels innermost (contiguous: the vectors),
// with the per-channel sums and constants in arrays of c doubles that stay in L1.

template <typename T>
CONVKIT_CLONES void pixels_sum(const PixelRun<T>& r, double* __restrict s) {
  const T* __restrict x = r.x;
  for (I q = 0; q < r.count; ++q, x += r.c)
    for (I j = 0; j < r.c; ++j) s[j] += x[j];
}

template <typename T>
CONVKIT_CLONES void pixels_squared_deviation(const PixelRun<T>& r, const double* __restrict mean,
                                             double* __restrict v) {
  const T* __restrict x = r.x;
  for (I q = 0; q < r.count; ++q, x += r.c)
    for (I j = 0; j < r.c; ++j) {
      const double d = x[j] - mean[j];
      v[j] += d * d;
    }
}

template <typename T>
CONVKIT_CLONES void pixels_affine(const PixelRun<T>& r, T* __restrict y,
                                  const double* __restrict scale,
                                  const double* __restrict shift) {
  const T* __restrict x = r.x;
  for (I q = 0; q < r.count; ++q, x += r.c, y += r.c)
    for (I j = 0; j < r.c; ++j) y[j] = static_cast<T>(x[j] * scale[j] + shift[j]);
}

template <typename T>
CONVKIT_CLONES void pixels_grad_sums(const PixelRun<T>& r, const T* __restrict g,
                                     const double* __restrict mean,
                                     const double* __restrict invstd, double* __restrict sg,
                                     double* __restrict sgx) {
  const T* __restrict x = r.x;
  for (I q = 0; q < r.count; ++q, x += r.c, g += r.c)
    for (I j = 0; j < r.c; ++j) {
      const double gv = g[j];
      sg[j] += gv;
      sgx[j] += gv * ((x[j] - mean[j]) * invstd[j]);
    }
}

template <typename T>
CONVKIT_CLONES void pixels_grad_input(const PixelRun<T>& r, const T* __restrict g,
                                      T* __restrict dx, const double* __restrict mean,
                                      const double* __restrict invstd,
                                      const double* __restrict k0, const double* __restrict mg,
                                      const double* __restrict mgx) {
  const T* __restrict x = r.x;
  for (I q = 0; q < r.count; ++q, x += r.c, g += r.c, dx += r.c)
    for (I j = 0; j < r.c; ++j) {
      const double xhat = (x[j] - mean[j]) * invstd[j];
      dx[j] = static_cast<T>(k0[j] * (g[j] - mg[j] - xhat * mgx[j]));
    }
}

#define CONVKIT_PIXELS_INSTANTIATE(T)                                                             \
  template void pixels_sum<T>(const PixelRun<T>&, double*);                                       \
  template void pixels_squared_deviation<T>(const PixelRun<T>&, const double*, double*);          \
  template void pixels_affine<T>(const PixelRun<T>&, T*, const double*, const double*);           \
  template void pixels_grad_sums<T>(const PixelRun<T>&, const T*, const double*, const double*,   \
                                    double*, double*);                                            \
  template void pixels_grad_input<T>(const PixelRun<T>&, const T*, T*, const double*,             \
                                     const double*, const double*, const double*, const double*);
CONVKIT_PIXELS_INSTANTIATE(float)
CONVKIT_PIXELS_INSTANTIATE(double)

}  // namespace convkit::detail
