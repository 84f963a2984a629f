// Shared pieces of the NCHW depthwise Highway kernels: one plane's geometry and edge loads/stores.
//
// Included once per SIMD target by the dwconv_nchw_*.cpp files (Highway's foreach_target
// re-includes them), hence the toggled include guard instead of #pragma once.
#if defined(CONVKIT_DWCONV_NCHW_COMMON_INL_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVKIT_DWCONV_NCHW_COMMON_INL_
#undef CONVKIT_DWCONV_NCHW_COMMON_INL_
#else
#define CONVKIT_DWCONV_NCHW_COMMON_INL_
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <hwy/highway.h>

#include "kernels/conv/conv_params.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace dwnchw {

namespace hn = hwy::HWY_NAMESPACE;
using I = std::int64_t;
using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;

// AVX-512 has 32 vector registers, the others 16: register blocks follow.
constexpr bool kManyRegs = HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL;
// Only these targets mask loads and stores in hardware (masked lanes are never touched).
constexpr bool kHardwareMask = HWY_TARGET == HWY_AVX2 || kManyRegs;
constexpr int kMaxLanes = HWY_MAX_BYTES / static_cast<int>(sizeof(float));

// b > 0. For a < 0, floor(a / b) = -((-a - 1) / b) - 1, which (unlike -a + b - 1) cannot
// overflow for a huge stride b.
inline I FloorDiv(I a, I b) { return a >= 0 ? a / b : -((-a - 1) / b) - 1; }
inline I CeilDiv(I a, I b) { return -FloorDiv(-a, b); }
inline I Clamp(I v, I lo, I hi) { return std::min(std::max(v, lo), hi); }
inline I LanesI(D d) { return static_cast<I>(hn::Lanes(d)); }

/// One 2-D correlation of a single plane, 1-D problems having ih = oh = kh = 1:
///   y[oy][ox] (=|+=) sum over kh, kw of w(kh, kw) * x[oy*sh - ph + kh*dh][ox*sw - pw + kw*dw]
/// where x outside [0, ih) x [0, iw) is zero (never read). Rows are contiguous (unit stride
/// in w); x_row / y_row step between rows; w(kh, kw) = w[kh*w_row + kw*w_col] (negative
/// steps walk a flipped kernel without copying it).
struct Plane {
  I ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
  I x_row, y_row, w_row, w_col;
};

/// The forward plane of a depthwise problem (src -> dst).
inline Plane FwdPlane(const ConvParams& p) {
  return {p.in[1],     p.in[2],     p.out[1],    p.out[2],   p.k[1],     p.k[2],
          p.stride[1], p.stride[2], p.dilation[1], p.dilation[2], p.pad[1], p.pad[2],
          p.src_s[3],  p.dst_s[3],  p.wei_s[3],  p.wei_s[4]};
}

/// Backward-data at stride 1 as a forward plane: diff_dst -> diff_src through the flipped
/// kernel and the mirrored padding (K-1)*d - pad (negative when the padding exceeded the span).
inline Plane FlippedPlane(const ConvParams& p) {
  return {p.out[1], p.out[2], p.in[1], p.in[2], p.k[1], p.k[2], 1, 1, p.dilation[1], p.dilation[2],
          (p.k[1] - 1) * p.dilation[1] - p.pad[1], (p.k[2] - 1) * p.dilation[2] - p.pad[2],
          p.dst_s[3], p.src_s[3], -p.wei_s[3], -p.wei_s[4]};
}

/// Lanes [lo, hi) of p[0 .. L) with 0 <= lo < hi <= L, zero elsewhere; reads nothing else.
HWY_INLINE V LoadPart(D d, const float* p, I lo, I hi) {
  if constexpr (kHardwareMask) {
    const auto m = hn::AndNot(hn::FirstN(d, static_cast<size_t>(lo)), hn::FirstN(d, static_cast<size_t>(hi)));
    return hn::MaskedLoad(m, d, p);
  } else {
    HWY_ALIGN float buf[kMaxLanes] = {};
    for (I l = lo; l < hi; ++l) buf[l] = p[l];
    return hn::Load(d, buf);
  }
}

/// The L lanes at p[0 .. L) of a row holding elements [0, n) (p = row + idx): lanes outside
/// the row are zero and never read.
HWY_INLINE V LoadClipped(D d, const float* row, I idx, I n) {
  const I L = LanesI(d);
  const I lo = Clamp(-idx, 0, L), hi = Clamp(n - idx, 0, L);
  if (lo >= hi) return hn::Zero(d);
  if (lo == 0 && hi == L) return hn::LoadU(d, row + idx);
  return LoadPart(d, row + idx, lo, hi);
}

/// Lanes 0, 2, 4, ... (Evens) or 1, 3, 5, ... (Odds) of the 2L elements lo then hi.
HWY_INLINE V Evens(D d, V hi, V lo) {
#if HWY_TARGET == HWY_SCALAR
  (void)d, (void)hi;
  return lo;
#else
  return hn::ConcatEven(d, hi, lo);
#endif
}
HWY_INLINE V Odds(D d, V hi, V lo) {
#if HWY_TARGET == HWY_SCALAR
  (void)d, (void)lo;
  return hi;
#else
  return hn::ConcatOdd(d, hi, lo);
#endif
}

/// Stores the first n lanes (0 < n <= L) of v at p.
HWY_INLINE void StoreFirst(D d, V v, float* p, I n) {
  if (n >= LanesI(d)) {
    hn::StoreU(v, d, p);
  } else if constexpr (kHardwareMask) {
    hn::BlendedStore(v, hn::FirstN(d, static_cast<size_t>(n)), d, p);
  } else {
    HWY_ALIGN float buf[kMaxLanes];
    hn::Store(v, d, buf);
    std::memcpy(p, buf, static_cast<size_t>(n) * sizeof(float));
  }
}

/// Loads the first n lanes (0 < n <= L) from p, zero elsewhere.
HWY_INLINE V LoadFirst(D d, const float* p, I n) {
  if (n >= LanesI(d)) return hn::LoadU(d, p);
  return LoadPart(d, p, 0, n);
}

/// Scalar fallback for any stride and dilation (w strides above 2): the same sum as Plane,
/// in the same tap order as the vector code.
inline void ScalarPlane(const Plane& g, const float* x, const float* w, float bias, bool accumulate,
                        float* y) {
  for (I oy = 0; oy < g.oh; ++oy)
    for (I ox = 0; ox < g.ow; ++ox) {
      float acc = accumulate ? y[oy * g.y_row + ox] : bias;
      for (I kh = 0; kh < g.kh; ++kh) {
        const I iy = oy * g.sh - g.ph + kh * g.dh;
        if (iy < 0 || iy >= g.ih) continue;
        for (I kw = 0; kw < g.kw; ++kw) {
          const I ix = ox * g.sw - g.pw + kw * g.dw;
          if (ix < 0 || ix >= g.iw) continue;
          acc += w[kh * g.w_row + kw * g.w_col] * x[iy * g.x_row + ix];
        }
      }
      y[oy * g.y_row + ox] = acc;
    }
}

}  // namespace dwnchw
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#endif  // include guard
