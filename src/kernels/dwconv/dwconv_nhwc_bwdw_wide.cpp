// Depthwise backward-weights for channels-last wide kernels (5 and up) at unit stride and
// dilation with multiplier 1, float32: chunks of taps slide along whole rows.
//
// Memory walked (channels innermost, pixels and rows at any stride):
//   src       [n][ih][iw][c]   ih = oh - ph + kh, iw = ow - pw + kw
//   diff_dst  [n][oh][ow][c]
//   diff_wei  [c][0][kh][kw]   dense, written once at the end
// The caller guarantees dwconv_nhwc_wide_supports(p) (the forward's problems); src outside
// the image is zero padding and is never read.
#include "kernels/dwconv/dwconv_nhwc.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS ((HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL) & ~(HWY_BASELINE_TARGETS))
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nhwc_bwdw_wide.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nhwc_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

using namespace dwnhwc;  // NOLINT(google-build-using-namespace): this target's helpers

constexpr int kMaxKb = kManyRegs ? 16 : 8;  // taps per register block

/// Unit stride and dilation, multiplier 1: taps kw0 .. kw0+KB-1 of kernel row kh for output
/// row dy_row, summed over the whole row. Steps of U outputs load the U diff_dst pixels and
/// the U + KB - 1 src columns under them once each, so U*KB FMAs cost 2U + KB - 1 loads;
/// columns in the padding are skipped with one test each (their taps add nothing), which
/// makes the rows' edges, most of a row when the kernel is wider than the image, as cheap
/// as their interior.
template <int KB, bool kTail>
HWY_INLINE void SlideColumns(const Geo& g, const float* x_row, const float* dy_row, I kh, I kw0,
                             I o0, I valid, I op, float* acc) {
  constexpr int U = 4;
  const D d;
  V sum[KB];
  for (int k = 0; k < KB; ++k) sum[k] = hn::Zero(d);
  const I px = g.src_px, iw = g.iw;
  auto step = [&](auto width, I ow) {
    constexpr int W = decltype(width)::value;
    V dv[W];
    for (int u = 0; u < W; ++u) dv[u] = LoadPx<kTail>(dy_row + (ow + u) * g.dst_px + o0, valid);
    const I col0 = ow - g.pw + kw0;
    HWY_UNROLL(32)
    for (int c = 0; c < W + KB - 1; ++c) {
      const I col = col0 + c;
      if (col < 0 || col >= iw) continue;
      const V xv = LoadPx<kTail>(x_row + col * px + o0, valid);
      HWY_UNROLL(8)
      for (int u = 0; u < W; ++u)
        if (c - u >= 0 && c - u < KB) sum[c - u] = hn::MulAdd(dv[u], xv, sum[c - u]);
    }
  };
  // Outputs whose columns all lie in the padding add nothing.
  const I ow_lo = std::max<I>(0, g.pw - kw0 - (KB - 1)), ow_hi = std::min(g.ow, iw + g.pw - kw0);
  I ow = ow_lo;
  for (; ow + U <= ow_hi; ow += U) step(std::integral_constant<int, U>(), ow);
  for (; ow < ow_hi; ++ow) step(std::integral_constant<int, 1>(), ow);
  for (int k = 0; k < KB; ++k) {
    float* a = acc + (kh * g.kw + kw0 + k) * op + o0;
    hn::StoreU(hn::Add(hn::LoadU(d, a), sum[k]), d, a);
  }
}

/// SlideColumns over every kernel row and tap chunk of one image (unit stride and dilation,
/// multiplier 1), one channel vector at a time over the whole image: a vector's lines of the
/// kernel window's rows and of one diff_dst row (kh + 1 rows of single lines, C floats
/// apart) stay in L1 while its chunks sweep them, where all the channels' would not.
void ImageSlide(const Geo& g, const Channels& ch, const float* x, const float* dy, float* acc) {
  const I L = LanesI();
  for (I v = 0; v < ch.vectors(); ++v) {
    const I valid = ch.valid(v);
    for (I oh = 0; oh < g.oh; ++oh) {
      const float* dy_row = dy + oh * g.dst_row;
      const I kh0 = std::max<I>(0, g.ph - oh), kh1 = std::min<I>(g.kh, g.ih + g.ph - oh);
      for (I a = kh0; a < kh1; ++a) {
        const float* x_row = x + (oh - g.ph + a) * g.src_row;
        for (I kw0 = 0, kb = 0; kw0 < g.kw; kw0 += kb) {
          kb = g.kw - kw0 >= kMaxKb ? kMaxKb : std::min<I>(8, g.kw - kw0);
          WithWidth(kb, [&](auto width) {  // kb is 1-8 or kMaxKb
            constexpr int KB = std::min(decltype(width)::value, kMaxKb);
            if (valid == L)
              SlideColumns<KB, false>(g, x_row, dy_row, a, kw0, v * L, valid, ch.op(), acc);
            else
              SlideColumns<KB, true>(g, x_row, dy_row, a, kw0, v * L, valid, ch.op(), acc);
          });
        }
      }
    }
  }
}

void BwdWeightsWide(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
  const Geo g = GeoOf(p);
  const Channels ch(p, g.kh * g.kw);
  ReduceImages(p, ch, src, diff_dst, diff_wei, [&](const float* x, const float* dy, float* acc) {
    ImageSlide(g, ch, x, dy, acc);
  });
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(BwdWeightsWide);

void dwconv_nhwc_bwdw_wide_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                               float* diff_wei) {
  HWY_DYNAMIC_DISPATCH(BwdWeightsWide)(p, src, diff_dst, diff_wei);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
