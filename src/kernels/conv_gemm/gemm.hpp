// Shared pieces of the GEMM-backed convolutions: a CBLAS call on logical matrix views,
// the channels x pixels views of activations, per-thread scratch and pixel walks.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <vector>

#include "kernels/conv/conv_params.hpp"

namespace convkit::kernels::gemm {

using I = std::int64_t;

/// A logical rows x cols matrix in memory: element (r, c) is at p[r * ld + c], or at
/// p[c * ld + r] when `t` (stored transposed). CBLAS takes either form for free.
template <typename T>
struct Mat {
  T* p = nullptr;
  I ld = 0;
  bool t = false;
  Mat<T> transposed() const { return {p, ld, !t}; }
};

inline void call_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float* a,
                      int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
inline void call_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const double* a,
                      int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc);
}

/// c (m x n) = a (m x k) * b (k x n) + beta * c. A transposed-stored c is computed as
/// c^T = b^T a^T. With beta == 0, OpenBLAS overwrites c without reading it (NaN-safe).
/// Callers guarantee every size and leading dimension fits in int (supports() checks).
template <typename T>
void mm(I m, I n, I k, Mat<const T> a, Mat<const T> b, T beta, Mat<T> c) {
  if (c.t) {
    mm<T>(n, m, k, b.transposed(), a.transposed(), beta, c.transposed());
    return;
  }
  auto op = [](bool t) { return t ? CblasTrans : CblasNoTrans; };
  // cblas checks ld >= the stored row length even where one row is read: keep it valid.
  auto ld = [](I given, I row_len) { return static_cast<int>(std::max<I>({given, row_len, 1})); };
  call_gemm(op(a.t), op(b.t), static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), a.p,
            ld(a.ld, a.t ? m : k), b.p, ld(b.ld, b.t ? k : n), beta, c.p, ld(c.ld, n));
}

/// How the (channels, pixels) slab of one image of an activation tensor maps onto a matrix,
/// pixels being the flattened spatial positions (d, h, w):
/// channel-major (NCDHW-like, pixels at unit stride) or pixel-major (channels-last,
/// channels at unit stride); `ok` is false when the pixels do not flatten to one stride.
struct PixelLayout {
  bool ok = false, pixel_major = false;
  I cs = 0, ps = 0;  // element strides of a channel and of a pixel
};

/// Layout of `channels` x the pixels of `sp` under strides s ((n, c, d, h, w)); prefers
/// channel-major when both readings hold (one pixel or one channel).
inline PixelLayout pixel_layout(const std::array<I, 5>& s, const std::array<I, 3>& sp, I channels) {
  PixelLayout l;
  l.cs = s[1];
  bool have = false;
  I inner = 1;
  for (int d = 2; d >= 0; --d) {
    const auto u = static_cast<std::size_t>(d);
    if (sp[u] == 1) continue;
    if (!have) {
      l.ps = s[u + 2];
      have = true;
    } else if (s[u + 2] != l.ps * inner) {
      return l;  // a gap or permutation between spatial dims
    }
    inner *= sp[u];
  }
  const I pixels = inner;
  if (!have) l.ps = 1;  // a single pixel: any stride reads it
  if (l.ps == 1 && (channels == 1 || l.cs >= pixels)) {
    l.ok = true;
    if (channels == 1) l.cs = pixels;
  } else if ((l.cs == 1 || channels == 1) && l.ps >= channels) {
    l.ok = l.pixel_major = true;
    l.cs = 1;
  }
  return l;
}

/// The channels x pixels matrix at `base` (already offset to image and first channel),
/// starting at pixel p0.
template <typename T>
Mat<T> pixel_mat(const PixelLayout& l, T* base, I p0) {
  return l.pixel_major ? Mat<T>{base + p0 * l.ps, l.ps, true} : Mat<T>{base + p0, l.cs, false};
}

/// Sets row r of the rows x cols matrix c to v[r] (a bias as the start of a beta = 1 GEMM,
/// which also overwrites whatever c held before).
template <typename T>
void fill_rows(Mat<T> c, I rows, I cols, const T* v) {
  for (I r = 0; r < rows; ++r)
    for (I j = 0; j < cols; ++j) c.p[c.t ? j * c.ld + r : r * c.ld + j] = v[r];
}

/// True when every value fits CBLAS's int arguments.
template <typename... Ts>
bool fit_int(Ts... v) {
  return ((v >= 0 && v <= INT_MAX) && ...);
}

inline bool strides_fit_int(const ConvParams& p) {
  for (std::size_t i = 0; i < 5; ++i)
    if (!fit_int(p.src_s[i], p.dst_s[i])) return false;
  return true;
}

/// Weights dense (o, i, kd, kh, kw), as src/ops/ passes them; the stride of a dimension of
/// extent 1 is never used (src/ops/ leaves 0 in the slots a 1-D or 2-D problem lacks).
inline bool dense_weights(const ConvParams& p) {
  const std::array<I, 5> extent{p.g * p.ocg, p.icg, p.k[0], p.k[1], p.k[2]};
  I stride = 1;
  for (int d = 4; d >= 0; --d) {
    const auto u = static_cast<std::size_t>(d);
    if (extent[u] != 1 && p.wei_s[u] != stride) return false;
    stride *= extent[u];
  }
  return true;
}

/// Depthwise problems (one input channel per group, several groups) belong to the dwconv
/// kernels: a GEMM with K = kernel size would waste the library.
inline bool depthwise(const ConvParams& p) { return p.icg == 1 && p.g > 1; }

/// Per-thread scratch of at least n elements. It only grows and lives as long as the thread,
/// so kernels ask for it once per call, before their loops, and never allocate inside them.
template <typename T>
T* scratch(I n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < static_cast<std::size_t>(n)) buffer.resize(static_cast<std::size_t>(n));
  return buffer.data();
}

/// Calls fn(j, offset) for pixels p0 + j, j in [0, p1 - p0), of an (d, h, w) grid of sizes
/// `sp` whose elements lie at d*s[2] + h*s[3] + w*s[4]; walks rows so no division per pixel.
template <typename Fn>
void for_pixels(const std::array<I, 3>& sp, const std::array<I, 5>& s, I p0, I p1, Fn&& fn) {
  I w = p0 % sp[2], h = (p0 / sp[2]) % sp[1], d = p0 / (sp[2] * sp[1]);
  for (I j = 0, p = p0; p < p1;) {
    const I run = std::min(sp[2] - w, p1 - p);
    const I row = d * s[2] + h * s[3];
    for (I t = 0; t < run; ++t) fn(j + t, row + (w + t) * s[4]);
    j += run;
    p += run;
    w = 0;
    if (++h == sp[1]) h = 0, ++d;
  }
}

}  // namespace convkit::kernels::gemm
