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
// 3x3 kernels at unit w stride keep all 9 taps of a channel vector in registers for the
// whole image (Image3x3). Otherwise, for one output row and kernel row, a block of KB kernel
// columns keeps KB accumulators per channel vector and slides along the output columns where
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

/// 3 x 3 kernels at any stride and dilation (MobileNet's): all 9 taps of a channel vector
/// stay in registers for the whole image, each diff_dst load shared by the 9, so small images
/// (7x7, 14x14) do not pay a call and a flush per output row, kernel row and vector; on large
/// images the rows go in bands that stay in L2, with one flush per band and vector. Output
/// rows whose three kernel rows all lie inside the image and the columns where every tap
/// does run without tests (Columns3); the rest test each tap, and padding is never read.
template <bool kMult, bool kAllRows>
HWY_INLINE void Columns3(const Geo& g, const Channels& ch, const float* const (&rows)[3],
                         const float* dy_row, I ow0, I ow1, bool check, I v, V (&sum)[9]) {
  for (I ow = ow0; ow < ow1; ++ow) {
    const V dv = ch.Direct(dy_row + ow * g.dst_px, v);
    const I iw0 = ow * g.sw - g.pw;
    for (int a = 0; a < 3; ++a) {
      if (!kAllRows && !rows[a]) continue;
      for (int b = 0; b < 3; ++b) {
        const I iw = iw0 + b * g.dw;
        if (check && (iw < 0 || iw >= g.iw)) continue;
        sum[a * 3 + b] = hn::MulAdd(dv, ch.Src<kMult>(rows[a] + iw * g.src_px, v), sum[a * 3 + b]);
      }
    }
  }
}

/// Columns3 at w stride SW (1 or 2) and unit dilation, with all three kernel rows inside the
/// image and no multiplier: the window's columns slide in registers (at stride 2 the last
/// column of one output is the first of the next), so a pixel costs 3*SW src loads and one
/// diff_dst load for its 9 FMAs.
template <int SW>
HWY_INLINE void Slide3(const Geo& g, const float* const (&rows)[3], const float* dy_row, I ow0,
                       I ow1, I o0, V (&sum)[9]) {
  const D d;
  const I px = g.src_px;
  const float* r[3];
  V x0[3], x1[3];
  for (int a = 0; a < 3; ++a) {
    r[a] = rows[a] + (ow0 * SW - g.pw) * px + o0;
    x0[a] = hn::LoadU(d, r[a]);
    x1[a] = hn::LoadU(d, r[a] + px);
  }
  const float* y = dy_row + ow0 * g.dst_px + o0;
  for (I ow = ow0; ow < ow1; ++ow, y += g.dst_px) {
    const V dv = hn::LoadU(d, y);
    for (int a = 0; a < 3; ++a) {
      const V x2 = hn::LoadU(d, r[a] + 2 * px);
      sum[a * 3] = hn::MulAdd(dv, x0[a], sum[a * 3]);
      sum[a * 3 + 1] = hn::MulAdd(dv, x1[a], sum[a * 3 + 1]);
      sum[a * 3 + 2] = hn::MulAdd(dv, x2, sum[a * 3 + 2]);
      r[a] += SW * px;
      if constexpr (SW == 1) {
        x0[a] = x1[a];
        x1[a] = x2;
      } else {
        x0[a] = x2;
        if (ow + 1 < ow1) x1[a] = hn::LoadU(d, r[a] + px);
      }
    }
  }
}

/// A whole output row of a 'same' 3x3 at unit stride (pw = 1, ow = iw >= 2), full vector at
/// o0, multiplier 1: Slide3 with the two edge pixels folded in (the first has no column to
/// its left, the last none to its right) and only the kernel rows in kRows (bit a: row a
/// lies inside the image), so that no pixel of the row takes the tested path.
template <unsigned kRows>
HWY_INLINE void SameRow3(const Geo& g, const float* const (&rows)[3], const float* dy_row, I o0,
                         V (&sum)[9]) {
  const D d;
  const I px = g.src_px, n = g.ow;
  const float* r[3];
  V xa[3], xb[3];  // columns ow - 1 and ow of each kernel row
  for (int a = 0; a < 3; ++a) {
    if (!((kRows >> a) & 1u)) continue;
    r[a] = rows[a] + o0;
    xa[a] = hn::LoadU(d, r[a]);
    xb[a] = hn::LoadU(d, r[a] + px);
  }
  const float* y = dy_row + o0;
  {  // ow = 0: columns 0 and 1
    const V dv = hn::LoadU(d, y);
    for (int a = 0; a < 3; ++a) {
      if (!((kRows >> a) & 1u)) continue;
      sum[a * 3 + 1] = hn::MulAdd(dv, xa[a], sum[a * 3 + 1]);
      sum[a * 3 + 2] = hn::MulAdd(dv, xb[a], sum[a * 3 + 2]);
    }
  }
  // Pixels in pairs, the second into its own sums: two FMA chains per tap.
  V odd[9];
  for (int t = 0; t < 9; ++t) odd[t] = hn::Zero(d);
  I ow = 1;
  for (; ow + 2 < n; ow += 2) {  // pixels ow and ow + 1: columns ow - 1 .. ow + 2
    const V dv0 = hn::LoadU(d, y + ow * g.dst_px), dv1 = hn::LoadU(d, y + (ow + 1) * g.dst_px);
    for (int a = 0; a < 3; ++a) {
      if (!((kRows >> a) & 1u)) continue;
      const V xc = hn::LoadU(d, r[a] + (ow + 1) * px), xd = hn::LoadU(d, r[a] + (ow + 2) * px);
      sum[a * 3] = hn::MulAdd(dv0, xa[a], sum[a * 3]);
      sum[a * 3 + 1] = hn::MulAdd(dv0, xb[a], sum[a * 3 + 1]);
      sum[a * 3 + 2] = hn::MulAdd(dv0, xc, sum[a * 3 + 2]);
      odd[a * 3] = hn::MulAdd(dv1, xb[a], odd[a * 3]);
      odd[a * 3 + 1] = hn::MulAdd(dv1, xc, odd[a * 3 + 1]);
      odd[a * 3 + 2] = hn::MulAdd(dv1, xd, odd[a * 3 + 2]);
      xa[a] = xc;
      xb[a] = xd;
    }
  }
  for (; ow + 1 < n; ++ow) {  // columns ow - 1, ow, ow + 1
    const V dv = hn::LoadU(d, y + ow * g.dst_px);
    for (int a = 0; a < 3; ++a) {
      if (!((kRows >> a) & 1u)) continue;
      const V xc = hn::LoadU(d, r[a] + (ow + 1) * px);
      sum[a * 3] = hn::MulAdd(dv, xa[a], sum[a * 3]);
      sum[a * 3 + 1] = hn::MulAdd(dv, xb[a], sum[a * 3 + 1]);
      sum[a * 3 + 2] = hn::MulAdd(dv, xc, sum[a * 3 + 2]);
      xa[a] = xb[a];
      xb[a] = xc;
    }
  }
  for (int t = 0; t < 9; ++t) sum[t] = hn::Add(sum[t], odd[t]);
  {  // ow = n - 1: columns n - 2 and n - 1
    const V dv = hn::LoadU(d, y + (n - 1) * g.dst_px);
    for (int a = 0; a < 3; ++a) {
      if (!((kRows >> a) & 1u)) continue;
      sum[a * 3] = hn::MulAdd(dv, xa[a], sum[a * 3]);
      sum[a * 3 + 1] = hn::MulAdd(dv, xb[a], sum[a * 3 + 1]);
    }
  }
}

template <bool kMult, bool kUnit>
void Image3x3(const Geo& g, const Channels& ch, const float* x, const float* dy, float* acc) {
  const D d;
  I lo = 0, hi = 0;
  InteriorColumns(g, 0, 3, lo, hi);
  lo = std::min(lo, g.ow);  // InteriorColumns may leave [lo, hi) past the row when it is empty
  hi = std::max(lo, std::min(hi, g.ow));
  const I full_vectors = ch.o() / LanesI();
  const bool same = kUnit && !kMult && g.pw == 1 && g.ow == g.iw && g.iw >= 2;
  // Bands of output rows whose src and diff_dst rows (all channels) stay in L2 (~256 KiB)
  // while every channel vector walks them.
  const I row_bytes = (g.sh * g.iw * ch.c() + g.ow * ch.o()) * static_cast<I>(sizeof(float));
  const I band = std::clamp<I>((I{256} << 10) / std::max<I>(row_bytes, 1), 1, g.oh);
  for (I oh0 = 0; oh0 < g.oh; oh0 += band)
    for (I v = 0; v < ch.vectors(); ++v) {
      V sum[9];
      for (V& s : sum) s = hn::Zero(d);
      for (I oh = oh0; oh < std::min(g.oh, oh0 + band); ++oh) {
        const I kh0 = std::max<I>(0, CeilDiv(g.ph - oh * g.sh, g.dh));
        const I kh1 = std::min<I>(3, FloorDiv(g.ih - 1 + g.ph - oh * g.sh, g.dh) + 1);
        const float* rows[3];
        for (int a = 0; a < 3; ++a)
          rows[a] = a >= kh0 && a < kh1 ? x + (oh * g.sh - g.ph + a * g.dh) * g.src_row : nullptr;
        const float* dy_row = dy + oh * g.dst_row;
        const bool all_rows = kh0 == 0 && kh1 == 3;
        if (same && v < full_vectors) {
          const unsigned mask = (kh0 == 0 ? 1u : 0u) | (kh0 <= 1 && kh1 >= 2 ? 2u : 0u) |
                                (kh1 == 3 ? 4u : 0u);
          if (mask == 7u) {
            SameRow3<7u>(g, rows, dy_row, v * LanesI(), sum);
            continue;
          }
          if (mask == 6u) {
            SameRow3<6u>(g, rows, dy_row, v * LanesI(), sum);
            continue;
          }
          if (mask == 3u) {
            SameRow3<3u>(g, rows, dy_row, v * LanesI(), sum);
            continue;
          }
        }
        Columns3<kMult, false>(g, ch, rows, dy_row, 0, lo, true, v, sum);
        if (!kMult && all_rows && g.dw == 1 && g.sw <= 2 && v < full_vectors && lo < hi)
          g.sw == 1 ? Slide3<1>(g, rows, dy_row, lo, hi, v * LanesI(), sum)
                    : Slide3<2>(g, rows, dy_row, lo, hi, v * LanesI(), sum);
        else if (all_rows)
          Columns3<kMult, true>(g, ch, rows, dy_row, lo, hi, false, v, sum);
        else
          Columns3<kMult, false>(g, ch, rows, dy_row, lo, hi, false, v, sum);
        Columns3<kMult, false>(g, ch, rows, dy_row, std::max(lo, hi), g.ow, true, v, sum);
      }
      const I o0 = v * LanesI();
      for (int t = 0; t < 9; ++t) {
        float* a = acc + t * ch.op() + o0;
        hn::StoreU(hn::Add(hn::LoadU(d, a), sum[t]), d, a);
      }
    }
}

void BwdWeights(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
  const Geo g = GeoOf(p);
  const I taps = g.kh * g.kw;
  const Channels ch(p, taps);
  std::vector<float> image(static_cast<std::size_t>(taps * ch.op()));
  std::vector<double> total(image.size(), 0.0);
  for (I n = 0; n < p.mb; ++n) {
    std::fill(image.begin(), image.end(), 0.0f);
    const float* x = src + n * p.src_s[0];
    const float* dy = diff_dst + n * p.dst_s[0];
    const bool unit = g.sw == 1 && g.dw == 1;
    if (g.kh == 3 && g.kw == 3) {
      if (ch.m() > 1)
        Image3x3<true, false>(g, ch, x, dy, image.data());
      else if (unit)
        Image3x3<false, true>(g, ch, x, dy, image.data());
      else
        Image3x3<false, false>(g, ch, x, dy, image.data());
    }
    else if (unit && g.sh == 1 && g.dh == 1 && ch.m() == 1 && g.kw >= 5)
      ImageSlide(g, ch, x, dy, image.data());
    else if (ch.m() > 1)
      unit ? Image<true, true>(g, ch, x, dy, image.data())
           : Image<true, false>(g, ch, x, dy, image.data());
    else
      unit ? Image<false, true>(g, ch, x, dy, image.data())
           : Image<false, false>(g, ch, x, dy, image.data());
    for (std::size_t i = 0; i < image.size(); ++i) total[i] += image[i];
  }
  for (I o = 0; o < ch.o(); ++o)
    for (I t = 0; t < taps; ++t)
      diff_wei[o * p.wei_s[0] + t] =
          static_cast<float>(total[static_cast<std::size_t>(t * ch.op() + o)]);
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
