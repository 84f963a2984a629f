// Depthwise backward-weights for channels-last 3x3 kernels (MobileNet's), float32, any
// stride, dilation and multiplier: all 9 taps of a channel vector stay in registers for the
// whole image. 'Same' images under 1 MiB with rows of at most 16 outputs instead walk two
// vectors (a cache line on AVX2) one kernel row at a time, their 3 taps' sums going through
// memory per row (RowSums); where their rows hold at most 16 pixels (MobileNet's 7x7 and
// 14x14 layers) and the call at least 6 vectors, tiles of up to 8 outputs take every
// vector before the next tile, with the same bits (WeightTileImages).
//
// Memory walked (channels innermost, pixels and rows at any stride):
//   src       [n][ih][iw][c]   ih = oh*sh - ph + kh*dh, iw = ow*sw - pw + kw*dw
//   diff_dst  [n][oh][ow][o]   o = c*M + m
//   diff_wei  [o][0][3][3]     dense, written once at the end
// The caller guarantees dwconv_nhwc_bwdw_k3_supports(p); src outside the image is zero
// padding and is never read.
#include "kernels/dwconv/dwconv_nhwc.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS ((HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL) & ~(HWY_BASELINE_TARGETS))
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nhwc_bwdw_k3.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/aligned_allocator.h>
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nhwc_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

using namespace dwnhwc;  // NOLINT(google-build-using-namespace): this target's helpers

/// 3 x 3 kernels at any stride and dilation (MobileNet's): all 9 taps of a channel vector
/// stay in registers for the whole image, each diff_dst load shared by the 9, so small images
/// (7x7, 14x14) do not pay a call and a flush per output row, kernel row and vector; on large
/// images the rows go in bands that stay in L2, with one flush per band and vector. Output
/// rows whose three kernel rows all lie inside the image and the columns where every tap
/// does run without tests (Columns3); the rest test each tap, and padding is never read.
template <bool kMult, bool kAllRows>
HWY_INLINE void Columns3(const Geo& g, const Channels& ch, const float* const (&rows)[3],
                         const float* dy_row, I ow0, I ow1, bool check, I v, V (&sums)[9]) {
  V sum[9];  // a local copy: GCC keeps it in registers, the caller's array it stores every pixel
  for (int t = 0; t < 9; ++t) sum[t] = sums[t];
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
  for (int t = 0; t < 9; ++t) sums[t] = sum[t];
}

/// Columns3 at w stride SW (1 or 2) and unit dilation, with all three kernel rows inside the
/// image and no multiplier: the window's columns slide in registers (at stride 2 the last
/// column of one output is the first of the next), so a pixel costs 3*SW src loads and one
/// diff_dst load for its 9 FMAs. With 16 vector registers (AVX2) only kernel rows 0 and 1
/// slide, and at stride 2 the middle column is loaded where it is used, so that the 9 sums
/// do not spill.
template <int SW>
HWY_INLINE void Slide3(const Geo& g, const float* const (&rows)[3], const float* dy_row, I ow0,
                       I ow1, I o0, V (&sums)[9]) {
  constexpr int kSlide = kManyRegs ? 3 : 2;  // kernel rows whose columns stay in registers
  constexpr bool kAhead = kManyRegs || SW == 1;  // the middle column is loaded one pixel ahead
  V sum[9];  // a local copy (see Columns3)
  for (int t = 0; t < 9; ++t) sum[t] = sums[t];
  const D d;
  const I px = g.src_px;
  const float* r[3];
  V x0[kSlide], x1[kSlide];
  for (int a = 0; a < 3; ++a) {
    r[a] = rows[a] + (ow0 * SW - g.pw) * px + o0;
    if (a >= kSlide) continue;
    x0[a] = hn::LoadU(d, r[a]);
    if constexpr (kAhead) x1[a] = hn::LoadU(d, r[a] + px);
  }
  const float* y = dy_row + ow0 * g.dst_px + o0;
  for (I ow = ow0; ow < ow1; ++ow, y += g.dst_px) {
    const V dv = hn::LoadU(d, y);
    for (int a = 0; a < 3; ++a) {
      if (a >= kSlide) {
        sum[a * 3] = hn::MulAdd(dv, hn::LoadU(d, r[a]), sum[a * 3]);
        sum[a * 3 + 1] = hn::MulAdd(dv, hn::LoadU(d, r[a] + px), sum[a * 3 + 1]);
        sum[a * 3 + 2] = hn::MulAdd(dv, hn::LoadU(d, r[a] + 2 * px), sum[a * 3 + 2]);
        r[a] += SW * px;
        continue;
      }
      const V x2 = hn::LoadU(d, r[a] + 2 * px);
      sum[a * 3] = hn::MulAdd(dv, x0[a], sum[a * 3]);
      sum[a * 3 + 1] = hn::MulAdd(dv, kAhead ? x1[a] : hn::LoadU(d, r[a] + px), sum[a * 3 + 1]);
      sum[a * 3 + 2] = hn::MulAdd(dv, x2, sum[a * 3 + 2]);
      r[a] += SW * px;
      if constexpr (SW == 1) {
        x0[a] = x1[a];
        x1[a] = x2;
      } else {
        x0[a] = x2;
        if (kAhead && ow + 1 < ow1) x1[a] = hn::LoadU(d, r[a] + px);
      }
    }
  }
  for (int t = 0; t < 9; ++t) sums[t] = sum[t];
}

/// A whole output row of a 'same' 3x3 (pw = 1, ow = ceil(iw / SW), iw >= 2) at w stride SW
/// (1 or 2), full vector at o0, multiplier 1, with one copy of the sums per row: output 0
/// has no column to its left, and the outputs from `hi` on lack columns on the right (at
/// stride 1 the last, at stride 2 the last when iw is odd). Only kernel rows in kRows (bit
/// a: row a lies inside the image) are walked; kSlide of them slide in registers and the
/// rest are loaded per pixel, so that 16 vector registers (AVX2) hold the 9 sums without
/// spilling. Edge pixels went through separate calls before, each loading and storing the
/// 9 sums, which on 7- and 14-pixel rows cost as much as the row.
template <int SW, unsigned kRows>
HWY_INLINE void SameRowFolded(const Geo& g, const float* const (&rows)[3], const float* dy_row,
                              I o0, I ahead, V (&sums)[9]) {
  constexpr int kSlide = kManyRegs ? 3 : 2;  // kernel rows whose columns stay in registers
  constexpr bool kRow[3] = {(kRows & 1u) != 0, (kRows & 2u) != 0, (kRows & 4u) != 0};
  V sum[9];  // a local copy (see Columns3)
  for (int t = 0; t < 9; ++t) sum[t] = sums[t];
  const D d;
  const I px = g.src_px, n = g.ow;
  const I hi = SW == 1 ? n - 1 : std::min(n, g.iw / 2);  // outputs [1, hi) read no padding
  const float* r[3] = {};  // column ow * SW - 1 of each kernel row, from ow = 1
  V x0[kSlide], x1[kSlide];
  {  // ow = 0: columns 0 and 1, taps 1 and 2
    const V dv = hn::LoadU(d, dy_row + o0);
    for (int a = 0; a < 3; ++a) {
      if (!kRow[a]) continue;
      const V c0 = hn::LoadU(d, rows[a] + o0), c1 = hn::LoadU(d, rows[a] + o0 + px);
      sum[a * 3 + 1] = hn::MulAdd(dv, c0, sum[a * 3 + 1]);
      sum[a * 3 + 2] = hn::MulAdd(dv, c1, sum[a * 3 + 2]);
      r[a] = rows[a] + o0 + (SW - 1) * px;
      if (a >= kSlide) continue;
      x0[a] = SW == 1 ? c0 : c1;
      x1[a] = c1;
    }
  }
  const float* y = dy_row + o0;
  constexpr int kLast = kRow[2] ? 2 : 1;  // the kernel row whose src lines are new
  for (I ow = 1; ow < hi; ++ow) {
    y += g.dst_px;
    const V dv = hn::LoadU(d, y);
    if (ahead != 0) Touch(y + ahead);
    for (int a = 0; a < 3; ++a) {
      if (!kRow[a]) continue;
      const float* c = r[a];
      r[a] += SW * px;
      if (ahead != 0 && (a == kLast || (SW == 2 && a == kLast - 1))) {
        Touch(c + 2 * px + ahead);
        if constexpr (SW == 2) Touch(c + px + ahead);
      }
      if (a >= kSlide) {
        sum[a * 3] = hn::MulAdd(dv, hn::LoadU(d, c), sum[a * 3]);
        sum[a * 3 + 1] = hn::MulAdd(dv, hn::LoadU(d, c + px), sum[a * 3 + 1]);
        sum[a * 3 + 2] = hn::MulAdd(dv, hn::LoadU(d, c + 2 * px), sum[a * 3 + 2]);
        continue;
      }
      const V x2 = hn::LoadU(d, c + 2 * px);
      sum[a * 3] = hn::MulAdd(dv, x0[a], sum[a * 3]);
      sum[a * 3 + 1] = hn::MulAdd(dv, SW == 1 ? x1[a] : hn::LoadU(d, c + px), sum[a * 3 + 1]);
      sum[a * 3 + 2] = hn::MulAdd(dv, x2, sum[a * 3 + 2]);
      if constexpr (SW == 1) x0[a] = x1[a];
      x1[a] = x2;
      if constexpr (SW == 2) x0[a] = x2;
    }
  }
  for (I ow = std::max<I>(hi, 1); ow < n; ++ow) {  // the right edge: columns past iw missing
    const V dv = hn::LoadU(d, dy_row + o0 + ow * g.dst_px);
    const I iw0 = ow * SW - 1;
    for (int a = 0; a < 3; ++a) {
      if (!kRow[a]) continue;
      const float* c = rows[a] + o0 + iw0 * px;
      for (int b = 0; b < 3; ++b)
        if (iw0 + b < g.iw) sum[a * 3 + b] = hn::MulAdd(dv, hn::LoadU(d, c + b * px), sum[a * 3 + b]);
    }
  }
  for (int t = 0; t < 9; ++t) sums[t] = sum[t];
}

/// Which kernel rows of output row oh read inside the image (bit a: row a), and their src rows.
HWY_INLINE unsigned KernelRows(const Geo& g, const float* x, I oh, const float* (&rows)[3]) {
  unsigned mask = 0;
  for (int a = 0; a < 3; ++a) {
    const I ih = oh * g.sh - g.ph + a * g.dh;
    const bool inside = ih >= 0 && ih < g.ih;
    rows[a] = inside ? x + ih * g.src_row : nullptr;
    mask |= inside ? 1u << a : 0u;
  }
  return mask;
}

/// Kernel row a's three taps over one output row of a 'same' 3x3 (pw = 1, iw >= 2) at w
/// stride SW (1 or 2), for K full vectors from o0 together (K = 2: the two halves of a cache
/// line on AVX2), added straight into the image's sums acc[(a * 3 + b) * op + o]. Output 0
/// has no column to its left; outputs from `hi` on have none right of them. The columns
/// slide in registers: per output, K diff_dst loads and K * SW src loads for 3 * K FMAs.
///
/// Why kernel rows apart, and sums that go through memory per row: 3 * K sums leave room for
/// the sliding columns of two vectors within 16 registers, so both halves of each strided
/// line are used while it is in L1. On 14x14x384 at batch 8, whose pixels lie 1536 B apart
/// and so fall in 8 of L1's 64 sets, the vector-at-a-time walk lost the line before the
/// next vector read its other half; this order takes 12-17% less time there, 5-15% less on
/// 14x14x576 at strides 1 and 2 (AVX2, Zen 3, 1 and 2 threads, calls alternating in one
/// process). Every full vector takes this order, paired or not, so the bits do not depend
/// on how src/ops/ cut the channels.
template <int SW, int K>
HWY_INLINE void RowSums(const float* r, const float* y, I n, I hi, I px, I dpx, float* acc, I op) {
  const D d;
  const I L = LanesI();
  V s[K][3], xl[K], xc[K];
  for (int k = 0; k < K; ++k) {
    for (int b = 0; b < 3; ++b) s[k][b] = hn::LoadU(d, acc + b * op + k * L);
    const V dv = hn::LoadU(d, y + k * L);
    const V c0 = hn::LoadU(d, r + k * L), c1 = hn::LoadU(d, r + px + k * L);
    s[k][1] = hn::MulAdd(dv, c0, s[k][1]);
    s[k][2] = hn::MulAdd(dv, c1, s[k][2]);
    xl[k] = SW == 1 ? c0 : c1;  // column ow * SW - 1 of output 1
    xc[k] = c1;                 // column ow of output 1 (SW == 1)
  }
  const float* c = r + (SW - 1) * px;  // column ow * SW - 1
  I ow = 1;
  for (; ow < hi; ++ow) {
    y += dpx;
    for (int k = 0; k < K; ++k) {
      const V dv = hn::LoadU(d, y + k * L);
      const V xr = hn::LoadU(d, c + 2 * px + k * L);
      s[k][0] = hn::MulAdd(dv, xl[k], s[k][0]);
      s[k][1] = hn::MulAdd(dv, SW == 1 ? xc[k] : hn::LoadU(d, c + px + k * L), s[k][1]);
      s[k][2] = hn::MulAdd(dv, xr, s[k][2]);
      if constexpr (SW == 1) xl[k] = xc[k];
      xc[k] = xr;
      if constexpr (SW == 2) xl[k] = xr;
    }
    c += SW * px;
  }
  for (; ow < n; ++ow) {  // the right edge: column ow * SW + 1 lies past the row
    y += dpx;
    for (int k = 0; k < K; ++k) {
      const V dv = hn::LoadU(d, y + k * L);
      s[k][0] = hn::MulAdd(dv, xl[k], s[k][0]);
      s[k][1] = hn::MulAdd(dv, SW == 1 ? xc[k] : hn::LoadU(d, c + px + k * L), s[k][1]);
    }
    c += SW * px;
  }
  for (int k = 0; k < K; ++k)
    for (int b = 0; b < 3; ++b) hn::StoreU(s[k][b], d, acc + b * op + k * L);
}

/// Output rows [oh0, oh1) of K full vectors from channel o0 through RowSums, into the sums
/// sums[t * op + o - o0] of tap t.
template <int K>
HWY_NOINLINE void RowSumsBand(const Geo& g, const float* x, const float* dy, I oh0, I oh1, I hi,
                              I o0, float* sums, I op) {
  for (I oh = oh0; oh < oh1; ++oh) {
    const float* rows[3];
    KernelRows(g, x, oh, rows);
    const float* y = dy + oh * g.dst_row + o0;
    for (int a = 0; a < 3; ++a) {
      if (!rows[a]) continue;
      if (g.sw == 1)
        RowSums<1, K>(rows[a] + o0, y, g.ow, hi, g.src_px, g.dst_px, sums + a * 3 * op, op);
      else
        RowSums<2, K>(rows[a] + o0, y, g.ow, hi, g.src_px, g.dst_px, sums + a * 3 * op, op);
    }
  }
}

/// Output rows per band of the 9-sum walk (Image3x3).
/// Bands as tall as keep the lines one vector's walk touches (one per pixel) within half
/// of L1 (256 lines, 16 KiB), so that the next vector, which reads the other half of those
/// lines on AVX2, finds them there. Bands sized for all channels' rows in L2 had 56x56x144
/// at stride 2 take 0.67-0.74 ms, now 0.52-0.59 (1 thread, batch 8); 28x28 and smaller
/// layers measured the same. The band depends on the image's width alone: the sums are
/// added per band, and a band that followed this call's channels (which src/ops/ cuts by
/// the thread count) gave other bits at 1 and 2 threads.
inline I Band(const Geo& g) {
  const I lines = g.sh * g.iw + g.ow;  // per output row, besides the kernel's extra rows
  return std::clamp<I>((256 - 2 * g.dh * g.iw) / std::max<I>(lines, 1), 1, g.oh);
}

/// Whether the full vectors of an image take RowSums: 'same' rows at w stride 1 or 2 of at
/// most 16 outputs, in an image under 1 MiB (no multiplier, checked by the caller). Longer
/// rows keep the 9 sums in registers: there one kernel row's pass over a row was too long
/// for the out-of-order window to overlap it with the next, and 28x28x192 ran 16-29%
/// slower through RowSums. The test reads the image alone, never this call's channels.
inline bool RowSumsFit(const Geo& g) {
  return g.pw == 1 && g.iw >= 2 && g.dw == 1 && g.ow <= 16 &&
         ((g.sw == 1 && g.ow == g.iw) || (g.sw == 2 && g.ow == (g.iw + 1) / 2)) &&
         !PrefetchAhead(g.ih * g.src_row * static_cast<I>(sizeof(float)));
}

/// Outputs [1, RowSumsHi(g)) of a RowSumsFit row read the column right of them.
inline I RowSumsHi(const Geo& g) { return g.sw == 1 ? g.ow - 1 : std::min(g.ow, g.iw / 2); }

/// Backward-weights of the first `vectors` full vectors of a RowSumsFit problem (multiplier
/// 1): per image, two vectors at a time, the sums start at zero in float in a small buffer
/// and then go into double totals; the bits ReduceImages gives, without its per-image float
/// array for all channels (34 KiB at 960 channels), which it zeroed and read back each
/// image: 7x7x960 at batch 8 takes 13-18% less time at 1 thread, 4-8% at 2 (AVX2, Zen 3).
/// Images of several bands keep ReduceImages: 14x14x384 ran 5-25% slower this way.
void RowSumsImages(const ConvParams& p, const Geo& g, I vectors, const float* src,
                   const float* diff_dst, float* diff_wei) {
  const I L = LanesI(), hi = RowSumsHi(g);
  const I op = vectors * L;  // the totals' channels per tap
  HWY_ALIGN float acc[9 * 2 * hwy::kMaxVectorSize / sizeof(float)];
  std::vector<double> total(static_cast<std::size_t>(9 * op));
  for (I n = 0; n < p.mb; ++n) {
    const float* x = src + n * p.src_s[0];
    const float* dy = diff_dst + n * p.dst_s[0];
    for (I v = 0; v < vectors; v += 2) {
      const I k = std::min<I>(2, vectors - v), kl = k * L, o0 = v * L;
      for (I i = 0; i < 9 * kl; i += L) hn::Store(hn::Zero(D()), D(), acc + i);  // not rep stos
      if (k == 2)
        RowSumsBand<2>(g, x, dy, 0, g.oh, hi, o0, acc, kl);
      else
        RowSumsBand<1>(g, x, dy, 0, g.oh, hi, o0, acc, kl);
      for (I t = 0; t < 9; ++t) AddToTotals(acc + t * kl, total.data() + t * op + o0, kl);
    }
  }
  StoreTotals(p, 9, op, op, total.data(), diff_wei);
}

/// Outputs [ow0, ow0 + T) of one output row at w stride SW (pw = 1) for full vectors
/// [v0, v1): the 9 taps' sums of vector v, acc[(v - v0) * 9 + tap][L], are loaded, take the
/// T outputs in order and are stored, so each tap sums its outputs in row-major order
/// whatever the tiles. Kernel rows in kRows (bit a: base[a] lies inside the image); column
/// j of the tile is src column ow0 * SW - 1 + j, which output t reads through tap b where
/// j = SW * t + b; `left` drops column 0 (left of the image), `right` the last.
template <int SW, int T, unsigned kRows>
HWY_NOINLINE void WeightTile3(const float* const (&base)[3], const float* dy_row, I v0, I v1,
                              I ow0, bool left, bool right, I px, I dpx, float* acc) {
  constexpr int kCols = SW * (T - 1) + 3;
  const D d;
  const I L = LanesI();
  const float* col[3];
  TileColumns<SW, kRows>(base, ow0, px, col);
  const float* y = dy_row + ow0 * dpx;
  for (I v = v0; v < v1; ++v) {
    const I o = v * L;
    float* s = acc + (v - v0) * 9 * L;
    V dv[T];
    for (int t = 0; t < T; ++t) dv[t] = hn::LoadU(d, y + t * dpx + o);
    for (int a = 0; a < 3; ++a) {
      if (!((kRows >> a) & 1u)) continue;
      V s0 = hn::Load(d, s + (a * 3) * L), s1 = hn::Load(d, s + (a * 3 + 1) * L),
        s2 = hn::Load(d, s + (a * 3 + 2) * L);
      HWY_UNROLL(32)
      for (int j = 0; j < kCols; ++j) {
        if ((j == 0 && left) || (j == kCols - 1 && right)) continue;
        const V x = hn::LoadU(d, col[a] + (j - 1) * px + o);
        if (j % SW == 0 && j / SW < T) s0 = hn::MulAdd(dv[j / SW], x, s0);
        if (j >= 1 && (j - 1) % SW == 0 && (j - 1) / SW < T)
          s1 = hn::MulAdd(dv[(j - 1) / SW], x, s1);
        if (j >= 2 && (j - 2) % SW == 0 && (j - 2) / SW < T)
          s2 = hn::MulAdd(dv[(j - 2) / SW], x, s2);
      }
      hn::Store(s0, d, s + (a * 3) * L);
      hn::Store(s1, d, s + (a * 3 + 1) * L);
      hn::Store(s2, d, s + (a * 3 + 2) * L);
    }
  }
}

/// Whether the `vectors` full vectors of this call take WeightTileImages (no multiplier,
/// checked by the caller): TileGeometry at unit w dilation, an image under 1 MiB, and at
/// least 6 vectors. Such images are RowSumsFit, and RowSums adds each tap's products in the
/// same order (row-major, from zero per image), so both give the same bits and the test may
/// read this call's channels, which src/ops/ cuts by the thread count. Rows of 28 pixels ran
/// 5-25% slower in tiles; 2 and 4 vectors per call (16 to 64 channels at 2 threads) 10-30%
/// slower, a tile's loop over the vectors being too short.
inline bool WeightTilesFit(const Geo& g, I vectors) {
  return g.dw == 1 && TileGeometry(g.sw, g.iw, g.ow, g.pw, g.ih, g.oh, g.sh, g.ph, g.dh) &&
         vectors >= 6 && RowSumsFit(g);
}

/// One image's full vectors [v0, v1) of a WeightTilesFit problem through WeightTile3, row by
/// row in tiles (ForEachTile), each tile taking every vector before the next, into
/// acc[(v - v0) * 9 + tap][L].
template <int SW>
void WeightTiles3(const Geo& g, const float* x, const float* dy, I v0, I v1, float* acc) {
  for (I oh = 0; oh < g.oh; ++oh) {
    const float* rows[3];
    const unsigned mask = KernelRows(g, x, oh, rows);
    const float* y = dy + oh * g.dst_row;
    ForEachTile<SW>(g.ow, g.iw, [&](I ow0, auto width, bool left, bool right) {
      WithRows(mask, [&](auto kept) {
        WeightTile3<SW, decltype(width)::value, decltype(kept)::value>(
            rows, y, v0, v1, ow0, left, right, g.src_px, g.dst_px, acc);
      });
    });
  }
}

/// Backward-weights of the first `vectors` full vectors of a WeightTilesFit problem
/// (multiplier 1): per image and run of up to 128 vectors (1024 channels on AVX2), the
/// sums start at zero in float, walk the image in tiles of pixels and then go into double
/// totals in image order, as ReduceImages' do; each tap sums its outputs in row-major
/// order, so the bits depend on the image alone.
///
/// Why tiles: RowSums and the 9-sum walk take one or two vectors through the whole image,
/// a pass per cache line of the pixels, on rows of 7 or 14 outputs whose set-up costs as
/// much as the row; a tile reads its pixels' channels in order with T diff_dst vectors and
/// 3 sums in registers. At batch 8 (AVX2, Zen 3, 1 and 2 threads, calls alternating in
/// one process): 7x7x960 33-40% less time, 14x14x384 15%, 14x14x576 5-17%, 14x14x576 at
/// stride 2 9-13%. Runs of 128 vectors (their sums take 36 KiB) measured 10% faster than
/// runs of 32 at 1 thread, and even with runs of the whole pixel.
void WeightTileImages(const ConvParams& p, const Geo& g, I vectors, const float* src,
                      const float* diff_dst, float* diff_wei) {
  constexpr I kChunk = 128;
  const I L = LanesI(), op = vectors * L;
  auto acc =
      hwy::AllocateAligned<float>(static_cast<std::size_t>(std::min(kChunk, vectors) * 9 * L));
  std::vector<double> total(static_cast<std::size_t>(9 * op));
  for (I n = 0; n < p.mb; ++n) {
    const float* x = src + n * p.src_s[0];
    const float* dy = diff_dst + n * p.dst_s[0];
    for (I v0 = 0; v0 < vectors; v0 += kChunk) {
      const I v1 = std::min(vectors, v0 + kChunk);
      for (I i = 0; i < (v1 - v0) * 9 * L; i += L) hn::Store(hn::Zero(D()), D(), acc.get() + i);
      g.sw == 1 ? WeightTiles3<1>(g, x, dy, v0, v1, acc.get())
                : WeightTiles3<2>(g, x, dy, v0, v1, acc.get());
      for (I v = v0; v < v1; ++v)
        for (I t = 0; t < 9; ++t)
          AddToTotals(acc.get() + ((v - v0) * 9 + t) * L, total.data() + t * op + v * L, L);
    }
  }
  StoreTotals(p, 9, op, op, total.data(), diff_wei);
}

template <bool kMult, bool kUnit>
void Image3x3(const Geo& g, const Channels& ch, const float* x, const float* dy, float* acc) {
  const D d;
  I lo = 0, hi = 0;
  InteriorColumns(g, 0, 3, lo, hi);
  lo = std::min(lo, g.ow);  // InteriorColumns may leave [lo, hi) past the row when it is empty
  hi = std::max(lo, std::min(hi, g.ow));
  const I full_vectors = ch.o() / LanesI();
  // 'Same' rows run whole (SameRowFolded) at strides 1 and 2: with 16 vector registers
  // (AVX2) the edge calls cost as much as the row. With 32 (AVX-512) a unit-stride row ran
  // through a variant that slid all three kernel rows without prefetching, and stride 2
  // took Slide3: SameRowFolded measured 18-20% less time on 112x112x32 (batch 8, 1 and 2
  // threads), 30% on 112x112x32 at batch 32, 7-12% on 112x112x96 at stride 2, and within
  // 3% either way on 56x56x144 and the 28x28 layers (Xeon, AVX-512, calls alternating in
  // one process). Most of it is the prefetch: without it 112x112x32 gave back 16 of 20%.
  constexpr int kSW = kUnit ? 1 : 2;
  const bool same = !kMult && g.pw == 1 && g.iw >= 2 &&
                    (kUnit ? g.ow == g.iw
                           : g.sw == 2 && g.dw == 1 && g.ow == (g.iw + 1) / 2);
  // While a vector walks a band, it prefetches the lines the vectors one cache line on will
  // read (same pixels, next 16 channels): on 56x56x144 at batch 8 this took the pass from
  // about 2.6 to 1.9 ms (AVX2, Zen 3, 1 thread); on 28x28x192, in L3, it cost 10%.
  const bool prefetch = PrefetchAhead(g.ih * g.iw * ch.c() * static_cast<I>(sizeof(float)));
  const I band = Band(g);
  // Full vectors of 'same' images in L2 or L3 go through RowSums, two at a time. The test
  // depends on the image alone, never on this call's channels, so the bits do not change
  // with the thread count.
  const bool row_sums = !kMult && RowSumsFit(g);
  const I row_hi = RowSumsHi(g);
  for (I oh0 = 0; oh0 < g.oh; oh0 += band)
    for (I v = 0; v < ch.vectors(); ++v) {
      const I oh1 = std::min(g.oh, oh0 + band);
      if (row_sums && v < full_vectors) {
        if (v + 1 < full_vectors) {
          RowSumsBand<2>(g, x, dy, oh0, oh1, row_hi, v * LanesI(), acc + v * LanesI(), ch.op());
          ++v;
        } else {
          RowSumsBand<1>(g, x, dy, oh0, oh1, row_hi, v * LanesI(), acc + v * LanesI(), ch.op());
        }
        continue;
      }
      V sum[9];
      for (V& s : sum) s = hn::Zero(d);
      const I ahead = prefetch && v * LanesI() + 16 + LanesI() <= ch.o() ? 16 : 0;
      for (I oh = oh0; oh < oh1; ++oh) {
        const float* rows[3];
        const unsigned mask = KernelRows(g, x, oh, rows);
        const float* dy_row = dy + oh * g.dst_row;
        if (same && v < full_vectors) {
          if (mask == 7u) {
            SameRowFolded<kSW, 7u>(g, rows, dy_row, v * LanesI(), ahead, sum);
            continue;
          }
          if (mask == 6u) {
            SameRowFolded<kSW, 6u>(g, rows, dy_row, v * LanesI(), ahead, sum);
            continue;
          }
          if (mask == 3u) {
            SameRowFolded<kSW, 3u>(g, rows, dy_row, v * LanesI(), ahead, sum);
            continue;
          }
        }
        const bool all_rows = mask == 7u;
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

void BwdWeightsK3(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
  const Geo g = GeoOf(p);
  const Channels ch(p, 0);  // no repacked weights: backward-weights computes them
  const bool unit = g.sw == 1 && g.dw == 1;
  // Tiled images, and single-band RowSums ones: the full vectors through WeightTileImages or
  // RowSumsImages, a channel tail as a problem of its own.
  const bool tiles = ch.m() == 1 && WeightTilesFit(g, p.g / LanesI());
  if (tiles || (ch.m() == 1 && RowSumsFit(g) && Band(g) == g.oh)) {
    const I L = LanesI(), full = p.g / L;
    if (full > 0 && tiles)
      WeightTileImages(p, g, full, src, diff_dst, diff_wei);
    else if (full > 0)
      RowSumsImages(p, g, full, src, diff_dst, diff_wei);
    if (full * L == p.g) return;
    ConvParams t = p;
    t.g = p.g - full * L;
    const I c0 = full * L;
    const Channels tch(t, 0);
    ReduceImages(t, tch, src + c0, diff_dst + c0, diff_wei + c0 * p.wei_s[0],
                 [&](const float* x, const float* dy, float* acc) {
                   unit ? Image3x3<false, true>(g, tch, x, dy, acc)
                        : Image3x3<false, false>(g, tch, x, dy, acc);
                 });
    return;
  }
  ReduceImages(p, ch, src, diff_dst, diff_wei, [&](const float* x, const float* dy, float* acc) {
    if (ch.m() > 1)
      Image3x3<true, false>(g, ch, x, dy, acc);
    else
      unit ? Image3x3<false, true>(g, ch, x, dy, acc) : Image3x3<false, false>(g, ch, x, dy, acc);
  });
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(BwdWeightsK3);

bool dwconv_nhwc_bwdw_k3_supports(const ConvParams& p) {
  return dwconv_nhwc_supports(p) && p.k[1] == 3 && p.k[2] == 3;
}

void dwconv_nhwc_bwdw_k3_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                             float* diff_wei) {
  HWY_DYNAMIC_DISPATCH(BwdWeightsK3)(p, src, diff_dst, diff_wei);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
