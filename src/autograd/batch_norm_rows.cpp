// Batch norm's channels-last loops, one clone per SIMD target (see batch_norm_rows.hpp).
// Built with -ffp-contract=off: a fused multiply-add would change the bits per target.
#include "autograd/batch_norm_rows.hpp"

namespace convkit::detail {

namespace {

using I = std::int64_t;

/// Runs body(q, j) over every pixel q and channel j < nb, with nb known at compile time for
/// full blocks of 16 so the channel loop becomes two or four whole vectors.
template <typename Body>
[[gnu::always_inline]] inline void each(I count, I nb, Body&& body) {
  if (nb == 16) {
    for (I q = 0; q < count; ++q)
      for (I j = 0; j < 16; ++j) body(q, j);
  } else {
    for (I q = 0; q < count; ++q)
      for (I j = 0; j < nb; ++j) body(q, j);
  }
}

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

template <typename T>
CONVKIT_CLONES void rows_sum(const RowBlock<T>& b, double* s) {
  double acc[16] = {};
  each(b.count, b.nb, [&](I q, I j) { acc[j] += b.x[q * b.stride + j]; });
  for (I j = 0; j < b.nb; ++j) s[j] += acc[j];
}

template <typename T>
CONVKIT_CLONES void rows_squared_deviation(const RowBlock<T>& b, const double* mean, double* v) {
  double m[16] = {}, acc[16] = {};
  for (I j = 0; j < b.nb; ++j) m[j] = mean[j];
  each(b.count, b.nb, [&](I q, I j) {
    const double d = b.x[q * b.stride + j] - m[j];
    acc[j] += d * d;
  });
  for (I j = 0; j < b.nb; ++j) v[j] += acc[j];
}

template <typename T>
CONVKIT_CLONES void rows_affine(const RowBlock<T>& b, T* y, const double* scale,
                                const double* shift) {
  double a[16] = {}, c[16] = {};
  for (I j = 0; j < b.nb; ++j) {
    a[j] = scale[j];
    c[j] = shift[j];
  }
  each(b.count, b.nb, [&](I q, I j) {
    const I at = q * b.stride + j;
    y[at] = static_cast<T>(b.x[at] * a[j] + c[j]);
  });
}

template <typename T>
CONVKIT_CLONES void rows_grad_sums(const RowBlock<T>& b, const T* g, const double* mean,
                                   const double* invstd, double* sg, double* sgx) {
  double m[16] = {}, is[16] = {}, s1[16] = {}, s2[16] = {};
  for (I j = 0; j < b.nb; ++j) {
    m[j] = mean[j];
    is[j] = invstd[j];
  }
  each(b.count, b.nb, [&](I q, I j) {
    const I at = q * b.stride + j;
    const double gv = g[at];
    s1[j] += gv;
    s2[j] += gv * ((b.x[at] - m[j]) * is[j]);
  });
  for (I j = 0; j < b.nb; ++j) {
    sg[j] += s1[j];
    sgx[j] += s2[j];
  }
}

template <typename T>
CONVKIT_CLONES void rows_grad_input(const RowBlock<T>& b, const T* g, T* dx, const double* mean,
                                    const double* invstd, const double* k0, const double* mg,
                                    const double* mgx) {
  double m[16] = {}, is[16] = {}, k[16] = {}, a[16] = {}, c[16] = {};
  for (I j = 0; j < b.nb; ++j) {
    m[j] = mean[j];
    is[j] = invstd[j];
    k[j] = k0[j];
    a[j] = mg[j];
    c[j] = mgx[j];
  }
  each(b.count, b.nb, [&](I q, I j) {
    const I at = q * b.stride + j;
    const double xhat = (b.x[at] - m[j]) * is[j];
    dx[at] = static_cast<T>(k[j] * (g[at] - a[j] - xhat * c[j]));
  });
}

#define CONVKIT_ROWS_INSTANTIATE(T)                                                                \
  template void rows_sum<T>(const RowBlock<T>&, double*);                                          \
  template void rows_squared_deviation<T>(const RowBlock<T>&, const double*, double*);             \
  template void rows_affine<T>(const RowBlock<T>&, T*, const double*, const double*);              \
  template void rows_grad_sums<T>(const RowBlock<T>&, const T*, const double*, const double*,      \
                                  double*, double*);                                               \
  template void rows_grad_input<T>(const RowBlock<T>&, const T*, T*, const double*, const double*, \
                                   const double*, const double*, const double*);
CONVKIT_ROWS_INSTANTIATE(float)
CONVKIT_ROWS_INSTANTIATE(double)

}  // namespace convkit::detail
