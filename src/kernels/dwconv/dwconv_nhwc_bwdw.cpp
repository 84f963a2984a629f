// Depthwise backward-weights for channels-last tensors (NHWC / NWC), float32, vectorized
// along the channels; compiled for AVX2, AVX-512 and a portable fallback, chosen at run time.
//
// Memory walked (channels innermost, pixels and rows at any stride):
//   src       [n][ih][iw][c]   ih = oh*sh - ph + kh*dh, iw = ow*sw - pw + kw*dw
//   diff_dst  [n][oh][ow][o]   o = c*M + m
//   diff_wei  [o][0][kh][kw]   dense, written once at the end
// The caller guarantees dwconv_nhwc_supports(p); src outside the image is zero padding and
// is never read.
//
// The strategy for every kernel, stride, dilation and multiplier (3x3 and wide kernels have
// their own in dwconv_nhwc_bwdw_k3.cpp and dwconv_nhwc_bwdw_wide.cpp): for one output row
// and kernel row, a block of KB kernel columns keeps KB accumulators per channel vector and slides along the output columns where
// all KB taps read inside the row: one diff_dst load feeds KB FMAs. Columns where some tap
// leaves the row are done per tap. The sums go into a float accumulator per tap and channel
// for the image, and the images' sums into doubles in image order, so the result does not
// depend on how the caller cut the channels into calls.
#include "kernels/dwconv/dwconv_nhwc.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS ((HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL) & ~(HWY_BASELINE_TARGETS))
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nhwc_bwdw.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nhwc_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

using namespace dwnhwc;  // NOLINT(google-build-using-namespace): this target's helpers

constexpr int kMaxKb = kManyRegs ? 16 : 8;  // kernel columns per register block

/// Output columns unrolled per register block so that at least about 8 independent FMA
/// chains are in flight (one chain per tap would wait on the FMA latency for small kernels).
constexpr int Unroll(int kb) { return kb >= 5 ? 1 : kb == 4 ? 2 : kb == 3 ? 3 : kb == 2 ? 4 : 8; }

/// One kernel row of one output row, channel vector v: taps kw0 .. kw0+KB-1 summed over the
/// output columns [lo, hi), where each of them reads inside the src row, into acc[tap][o].
/// kUnit (w stride and dilation 1) lets the U x KB src loads of a step share the U + KB - 1
/// distinct columns.
template <int KB, bool kMult, bool kUnit>
HWY_INLINE void Columns(const Geo& g, const Channels& ch, const float* x_row, const float* dy_row,
                        I kh, I kw0, I lo, I hi, I v, float* acc) {
  constexpr int U = Unroll(KB);
  const D d;
  V sum[U][KB];
  for (int u = 0; u < U; ++u)
    for (int k = 0; k < KB; ++k) sum[u][k] = hn::Zero(d);
  const I px = g.src_px;
  auto column = [&](const float* x, int u, int k) {
    return kUnit ? x + (u + k) * px : x + (u * g.sw + k * g.dw) * px;
  };
  I ow = lo;
  for (; ow + U <= hi; ow += U) {
    const float* x = x_row + (ow * g.sw - g.pw + kw0 * g.dw) * px;
    for (int u = 0; u < U; ++u) {
      const V dy = ch.Direct(dy_row + (ow + u) * g.dst_px, v);
      for (int k = 0; k < KB; ++k)
        sum[u][k] = hn::MulAdd(dy, ch.Src<kMult>(column(x, u, k), v), sum[u][k]);
    }
  }
  for (; ow < hi; ++ow) {
    const float* x = x_row + (ow * g.sw - g.pw + kw0 * g.dw) * px;
    const V dy = ch.Direct(dy_row + ow * g.dst_px, v);
    for (int k = 0; k < KB; ++k)
      sum[0][k] = hn::MulAdd(dy, ch.Src<kMult>(column(x, 0, k), v), sum[0][k]);
  }
  const I o0 = v * LanesI();
  for (int k = 0; k < KB; ++k) {
    V total = sum[0][k];
    for (int u = 1; u < U; ++u) total = hn::Add(total, sum[u][k]);
    float* a = acc + (kh * g.kw + kw0 + k) * ch.op() + o0;
    hn::StoreU(hn::Add(hn::LoadU(d, a), total), d, a);
  }
}

template <bool kMult, bool kUnit>
void ColumnsAny(const Geo& g, const Channels& ch, const float* x_row, const float* dy_row, I kh,
                I kw0, I kb, I lo, I hi, I v, float* acc) {
  WithWidth(kb, [&](auto width) {  // kb is 1-8 or kMaxKb
    constexpr int KB = std::min(decltype(width)::value, kMaxKb);
    Columns<KB, kMult, kUnit>(g, ch, x_row, dy_row, kh, kw0, lo, hi, v, acc);
  });
}

/// Adds one image's products into acc[tap][o] (taps kh*KW + kw, rows of op floats).
template <bool kMult, bool kUnit>
void Image(const Geo& g, const Channels& ch, const float* x, const float* dy, float* acc) {
  const I chunk = VectorsPerChunk(g, ch.vectors());
  for (I v0 = 0; v0 < ch.vectors(); v0 += chunk) {
    const I v1 = std::min(ch.vectors(), v0 + chunk);
    for (I oh = 0; oh < g.oh; ++oh) {
      const float* dy_row = dy + oh * g.dst_row;
      const I kh0 = std::max<I>(0, CeilDiv(g.ph - oh * g.sh, g.dh));
      const I kh1 = std::min<I>(g.kh, FloorDiv(g.ih - 1 + g.ph - oh * g.sh, g.dh) + 1);
      for (I a = kh0; a < kh1; ++a) {
        const float* x_row = x + (oh * g.sh - g.ph + a * g.dh) * g.src_row;
        for (I v = v0; v < v1; ++v)
          for (I kw0 = 0, kb = 0; kw0 < g.kw; kw0 += kb) {
            // Full blocks of kMaxKb, then at most 8 (the widths ColumnsAny has).
            kb = g.kw - kw0 >= kMaxKb ? kMaxKb : std::min<I>(8, g.kw - kw0);
            I lo = 0, hi = 0;
            InteriorColumns(g, kw0, kw0 + kb, lo, hi);
            if (lo < hi) ColumnsAny<kMult, kUnit>(g, ch, x_row, dy_row, a, kw0, kb, lo, hi, v, acc);
            // The columns outside [lo, hi) where a tap still reads inside the row.
            for (I b = kw0; b < kw0 + kb; ++b) {
              I tlo = 0, thi = 0;
              InteriorColumns(g, b, b + 1, tlo, thi);
              if (lo < hi) {
                if (tlo < lo) Columns<1, kMult, kUnit>(g, ch, x_row, dy_row, a, b, tlo, lo, v, acc);
                if (hi < thi) Columns<1, kMult, kUnit>(g, ch, x_row, dy_row, a, b, hi, thi, v, acc);
              } else if (tlo < thi) {
                Columns<1, kMult, kUnit>(g, ch, x_row, dy_row, a, b, tlo, thi, v, acc);
              }
            }
          }
      }
    }
  }
}

void BwdWeights(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
  const Geo g = GeoOf(p);
  const Channels ch(p, g.kh * g.kw);
  const bool unit = g.sw == 1 && g.dw == 1;
  ReduceImages(p, ch, src, diff_dst, diff_wei, [&](const float* x, const float* dy, float* acc) {
    if (ch.m() > 1)
      unit ? Image<true, true>(g, ch, x, dy, acc) : Image<true, false>(g, ch, x, dy, acc);
    else
      unit ? Image<false, true>(g, ch, x, dy, acc) : Image<false, false>(g, ch, x, dy, acc);
  });
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(BwdWeights);

void dwconv_nhwc_bwd_weights_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                                 float* diff_wei) {
  HWY_DYNAMIC_DISPATCH(BwdWeights)(p, src, diff_dst, diff_wei);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
