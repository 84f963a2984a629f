// Depthwise backward-weights for channels-last wide kernels (5 and up) at unit stride and
// dilation with multiplier 1, float32: chunks of taps slide along dense copies of rows.
//
// Memory walked (channels innermost, pixels and rows at any stride):
//   src       [n][ih][iw][c]   ih = oh - ph + kh, iw = ow - pw + kw
//   diff_dst  [n][oh][ow][c]
//   diff_wei  [c][0][kh][kw]   dense, written once at the end
// The caller guarantees dwconv_nhwc_wide_supports(p) (the forward's problems). src outside
// the image is zero padding: it is never read, but the copies' zero pixels stand for it,
// so a NaN or infinity in diff_dst may reach taps that see only padding (NaN * 0), as in
// PyTorch's CPU path.
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
#include <hwy/aligned_allocator.h>
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nhwc_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

using namespace dwnhwc;  // NOLINT(google-build-using-namespace): this target's helpers

constexpr int kMaxKb = kManyRegs ? 16 : 8;  // taps per register block

/// fn(std::integral_constant<int, n>()) for a chunk of n taps, 1 <= n <= kMaxKb.
template <int N = 1, typename Fn>
HWY_INLINE void WithTaps(I n, Fn&& fn) {
  if constexpr (N == kMaxKb)
    fn(std::integral_constant<int, N>());
  else if (n == N)
    fn(std::integral_constant<int, N>());
  else
    WithTaps<N + 1>(n, fn);
}

/// Dense copies of src rows kept in `slots` rows of a ring: src row r lies in slot
/// r % slots, at column 0 of a row of `row` floats (its pixels of L floats after kPad zero
/// pixels).
struct XRing {
  float* x;
  I row, slots;
  float* Row(I r) const { return x + (r % slots) * row; }
};

/// Taps kw0 .. kw0 + KB - 1 of NR adjacent kernel rows summed over `rows` output rows in
/// registers, then added to acc[j * acc_row + k * op] (kernel row j, tap k) once. Output
/// row r reads src rows x_first + r + j of the ring; dy_rows is dense (pixels of L floats,
/// rows dy_row_s floats apart). Output ow's tap k reads x column ow + shift + k, and x's
/// rows carry at least KB - 1 zero pixels on either side, so that every output of
/// [ow_lo, ow_hi) takes the same steps without a test. Steps of U outputs load the U
/// diff_dst pixels and the U + KB - 1 src columns of each kernel row under them once each:
/// NR*U*KB FMAs for U + NR*(U + KB - 1) loads.
template <int KB, int NR>
HWY_INLINE void SlideRows(const XRing& ring, I x_first, const float* dy_rows, I dy_row_s,
                          I rows, I ow_lo, I ow_hi, I shift, float* acc, I op, I acc_row) {
  constexpr int U = 4;
  const D d;
  const I L = LanesI();
  V sum[NR][KB];
  for (int j = 0; j < NR; ++j)
    for (int k = 0; k < KB; ++k) sum[j][k] = hn::Zero(d);
  for (I r = 0; r < rows; ++r) {
    const float* x_row[NR];
    for (int j = 0; j < NR; ++j) x_row[j] = ring.Row(x_first + r + j) + shift * L;
    const float* dy_row = dy_rows + r * dy_row_s;
    auto step = [&](auto width, I ow) {
      constexpr int W = decltype(width)::value;
      V dv[W];
      for (int u = 0; u < W; ++u) dv[u] = hn::Load(d, dy_row + (ow + u) * L);
      HWY_UNROLL(32)
      for (int c = 0; c < W + KB - 1; ++c) {
        for (int j = 0; j < NR; ++j) {
          const V xv = hn::Load(d, x_row[j] + (ow + c) * L);
          HWY_UNROLL(8)
          for (int u = 0; u < W; ++u)
            if (c - u >= 0 && c - u < KB) sum[j][c - u] = hn::MulAdd(dv[u], xv, sum[j][c - u]);
        }
      }
    };
    I ow = ow_lo;
    for (; ow + U <= ow_hi; ow += U) step(std::integral_constant<int, U>(), ow);
    for (; ow < ow_hi; ++ow) step(std::integral_constant<int, 1>(), ow);
  }
  for (int j = 0; j < NR; ++j)
    for (int k = 0; k < KB; ++k) {
      float* a = acc + j * acc_row + k * op;
      hn::StoreU(hn::Add(hn::LoadU(d, a), sum[j][k]), d, a);
    }
}

/// One call's scratch for one channel vector: a ring of dense src rows, each padded with
/// kPad zero pixels on either side, that holds the rows a band of `band` output rows reads,
/// and the band's diff_dst rows, dense.
struct BandScratch {
  static constexpr I kPad = kMaxKb - 1;
  I band, x_row, dy_row, slots;
  hwy::AlignedFreeUniquePtr<float[]> x, dy;
  explicit BandScratch(const Geo& g)
      : x_row((g.iw + 2 * kPad) * LanesI()), dy_row(g.ow * LanesI()) {
    // A band's diff_dst rows and one src row per output row: 32 KiB.
    const I row_bytes = (x_row + dy_row) * I{sizeof(float)};
    band = std::clamp<I>((I{32} << 10) / row_bytes, 1, g.oh);
    slots = std::min(g.ih, band + g.kh - 1);
    const std::size_t xn = static_cast<std::size_t>(slots * x_row);
    x = hwy::AllocateAligned<float>(xn);
    dy = hwy::AllocateAligned<float>(static_cast<std::size_t>(band * dy_row));
    std::fill(x.get(), x.get() + xn, 0.0f);  // the pads stay zero
  }
};

/// Every kernel row and tap chunk of one image for the channel vector at o0 (`valid`
/// channels), a band of output rows at a time, into acc[tap][L]. The vector's lanes of the
/// band's diff_dst rows and of the src rows under them are first copied into dense rows,
/// each src row once per image: the ring keeps the rows the next band shares with this one.
/// Read in place, a vector's pixels lie C floats apart, and at 128 or 256 channels (512 B or
/// 1 KiB) a row's lines fall in 8 or 4 of L1's 64 sets: the rows a band sweeps did not stay
/// in L1, and 13x13 and 31x31 ran at half the speed of 8 channels. The copies also give the
/// rows their zero padding, so that no output needs a test, and zero the lanes past `valid`.
/// (Copying every band's src rows afresh, with bands of 16 KiB that hold one or two output
/// rows of 56-pixel images, copied each src row up to kh times: against that the ring takes
/// 23-30% less time on 7x7 and 13x13 at 56x56x128, 7-16% on 31x31 at 28x28x256 and 13-20%
/// on 5x5 at 28x28x240 (AVX-512, batch 8, 1 and 2 threads); on the AVX2 target 8-12% on
/// 7x7 and 13x13, 5x5 even.)
/// A kernel row's taps go in chunks of at most kMaxKb, as even as can be (13: 13 with 32
/// registers, 7 + 6 with 16; 31: 16 + 15 or 8 + 8 + 8 + 7): a chunk of KB taps has KB
/// chains of FMAs, fewer than 8 wait on the FMA's latency, and each chunk loads the
/// diff_dst pixels again. (With 32 registers, chunks of at most 8 took 12-15% more time on
/// 13x13 and 14-19% on 9x9 at 56x56x128, batch 8; 31x31 even. With 16, rows of 9 to 15
/// taps went as 8 and the rest, 9 as 8 + 1: even chunks measured even to 5% faster on 9x9,
/// 11x11 and 13x13.) With 32 registers, kernel rows up to 8 taps wide go two at a time
/// over the output rows both read, which shares each diff_dst load and doubles the chains:
/// 5x5 at 28x28x240 and 56x56x96 takes 3-10% less time, 7x7 at 56x56x128 2-7% (batch 8).
void ImageSlide(const Geo& g, BandScratch& s, const float* x, const float* dy, I o0, I valid,
                float* acc) {
  const I L = LanesI(), pad = BandScratch::kPad;
  const XRing ring{s.x.get() + pad * L, s.x_row, s.slots};
  I copied = 0;  // src rows [0, copied) have been in the ring
  for (I oh0 = 0; oh0 < g.oh; oh0 += s.band) {
    const I oh1 = std::min(g.oh, oh0 + s.band);
    // The src rows the band's output rows read: oh - ph + a for a < kh.
    const I r0 = std::max<I>(0, oh0 - g.ph), r1 = std::min(g.ih, oh1 - 1 - g.ph + g.kh);
    if (r0 >= r1) continue;
    const auto gather = [&](auto tail) {
      constexpr bool kTail = decltype(tail)::value;
      for (I r = std::max(r0, copied); r < r1; ++r)
        GatherRows<kTail>(x + r * g.src_row, 1, g.iw, g.src_row, g.src_px, o0, valid, 0,
                          ring.Row(r));
      GatherRows<kTail>(dy + oh0 * g.dst_row, oh1 - oh0, g.ow, g.dst_row, g.dst_px, o0, valid, 0,
                        s.dy.get());
    };
    if (valid == L)
      gather(std::false_type());
    else
      gather(std::true_type());
    copied = r1;  // r1 grows band by band
    // Output rows [lo, hi) of the band through kernel rows a .. a + NR - 1, every chunk.
    auto rows = [&](auto nr, I a, I lo, I hi) {
      constexpr int NR = decltype(nr)::value;
      if (lo >= hi) return;
      const float* dy_rows = s.dy.get() + (lo - oh0) * s.dy_row;
      for (I kw0 = 0; kw0 < g.kw;) {
        const I left = g.kw - kw0, kb = CeilDiv(left, CeilDiv(left, kMaxKb));
        const I shift = kw0 - g.pw;
        WithTaps(kb, [&](auto width) {
          constexpr int KB = decltype(width)::value;
          // Outputs with no column in the row add nothing.
          const I ow_lo = std::max<I>(0, -shift - (KB - 1));
          const I ow_hi = std::min<I>(g.ow, g.iw - shift);
          SlideRows<KB, NR>(ring, lo - g.ph + a, dy_rows, s.dy_row, hi - lo, ow_lo, ow_hi,
                            shift, acc + (a * g.kw + kw0) * L, L, g.kw * L);
        });
        kw0 += kb;
      }
    };
    const bool pairs = kManyRegs && g.kw <= 8;
    for (I a = 0; a < g.kh;) {
      // The band's output rows whose src row oh - ph + a lies in the image.
      const I lo = std::max(oh0, g.ph - a), hi = std::min(oh1, g.ih + g.ph - a);
      if (!pairs || a + 1 == g.kh) {
        rows(std::integral_constant<int, 1>(), a, lo, hi);
        ++a;
        continue;
      }
      const I lo1 = std::max(oh0, g.ph - a - 1), hi1 = std::min(oh1, g.ih + g.ph - a - 1);
      rows(std::integral_constant<int, 2>(), a, lo, hi1);
      rows(std::integral_constant<int, 1>(), a, std::max(lo, hi1), hi);
      rows(std::integral_constant<int, 1>(), a + 1, lo1, std::min(lo, hi1));
      a += 2;
    }
  }
}

/// One channel vector at a time over every image: its taps' sums (kh*kw vectors, 31 KiB
/// for 31x31) take each image in float and add it in double in image order, the bits
/// ReduceImages gives, without the [tap][channel] arrays for all channels (3 MiB for 31x31
/// at 256 channels) that ReduceImages zeroes and adds up per image.
void BwdWeightsWide(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
  const Geo g = GeoOf(p);
  const I L = LanesI(), taps = g.kh * g.kw, channels = p.g;  // ocg == 1
  BandScratch scratch(g);
  std::vector<float> acc(static_cast<std::size_t>(taps * L));
  std::vector<double> total(static_cast<std::size_t>(taps * L));
  for (I o0 = 0; o0 < channels; o0 += L) {
    const I valid = std::min(L, channels - o0);
    std::fill(total.begin(), total.end(), 0.0);
    for (I n = 0; n < p.mb; ++n) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      ImageSlide(g, scratch, src + n * p.src_s[0], diff_dst + n * p.dst_s[0], o0, valid, acc.data());
      for (std::size_t i = 0; i < total.size(); ++i) total[i] += acc[i];
    }
    for (I c = 0; c < valid; ++c)
      for (I t = 0; t < taps; ++t)
        diff_wei[(o0 + c) * p.wei_s[0] + t] = static_cast<float>(total[static_cast<std::size_t>(t * L + c)]);
  }
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
