// Depthwise forward and backward-data for channels-last wide kernels (5x5, 7x7, RepLKNet's
// 13x13 and 31x31) at unit stride and dilation with multiplier 1, float32.
//
// Memory walked (channels innermost, pixels and rows at any stride):
//   src  [n][ih][iw][c]   dst  [n][oh][ow][c]
//   wv   [c / L][tap][L]  the weights packed per call, one vector's taps contiguous
//   rows [r][iw][L]       one vector's input rows of a band, copied dense per band
// The caller guarantees dwconv_nhwc_wide_supports(p); padding is never read nor multiplied.
//
// One channel vector walks the image row by row, on dense copies of its rows. For a block
// of P outputs of a row and a chunk of KB taps of one kernel row, the KB weights stay in
// registers while the P + KB - 1 columns under them are loaded once each: P*KB FMAs for
// P + 2*KB - 1 loads, where one tap at a time costs a load per FMA. Columns in the padding
// are skipped (a test per column of the chunks that reach them, none per FMA) and kernel
// rows in the padding are never visited. Backward-data is the forward of diff_dst with the
// kernel turned half a turn.
#include "kernels/dwconv/dwconv_nhwc.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS ((HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL) & ~(HWY_BASELINE_TARGETS))
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nhwc_wide.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/aligned_allocator.h>
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nhwc_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

using namespace dwnhwc;  // NOLINT(google-build-using-namespace): this target's helpers

/// Taps per chunk (weights held in registers) and outputs per block (accumulators).
constexpr int kWideTaps = 5;
constexpr int kWideBlock = kManyRegs ? 14 : 8;

/// One wide pass as a unit-stride forward convolution of `in` into `out` (PassGeo's fields,
/// sh = 1) with a kh x kw kernel; pads may be negative.
struct WideGeo {
  PassGeo p;
  I kh, kw;
};

/// Adds taps [k0, k0 + KB) of one kernel row (their weights at w, L floats apart) into P
/// accumulators: output q, tap k reads column col0 + q + k of the dense row at `in` (pixels
/// of L floats, zero in the lanes past the channels); with kEdge, columns outside [0, in_w)
/// are padding and skipped, without it all P + KB - 1 columns lie inside the row.
template <int P, int KB, bool kEdge>
HWY_INLINE void WideChunk(const float* in, I col0, I in_w, const float* w, V (&acc)[P]) {
  const D d;
  const I L = LanesI();
  V wv[KB];
  HWY_UNROLL(16)
  for (int k = 0; k < KB; ++k) wv[k] = hn::Load(d, w + k * L);
  HWY_UNROLL(32)
  for (int c = 0; c < P + KB - 1; ++c) {
    const I col = col0 + c;
    if (kEdge && (col < 0 || col >= in_w)) continue;
    const V x = hn::Load(d, in + col * L);
    HWY_UNROLL(16)
    for (int k = 0; k < KB; ++k)
      if (c - k >= 0 && c - k < P) acc[c - k] = hn::MulAdd(x, wv[k], acc[c - k]);
  }
}

/// P outputs from ow0 of output row oh for the vector at o0; wv + (a*kw + b)*L holds tap
/// (a, b)'s weights for the vector. `in` holds the vector's input rows from row0 on, dense
/// (g.p's in_row is the copy's).
template <int P, bool kTail>
HWY_INLINE void WideBlock(const WideGeo& g, const float* wv, V init, const float* in, I row0,
                          float* out, I oh, I ow0, I o0, I valid) {
  const PassGeo& p = g.p;
  V acc[P];
  for (int q = 0; q < P; ++q) acc[q] = init;
  const I a0 = std::max<I>(0, p.ph - oh), a1 = std::min<I>(g.kh, p.in_h + p.ph - oh);
  for (I a = a0; a < a1; ++a) {
    const float* row = in + (oh - p.ph + a - row0) * p.in_row;
    const float* w = wv + a * g.kw * LanesI();
    // Chunks whose columns all lie in the padding add nothing.
    const I col0 = ow0 - p.pw;
    const I b0 = std::max<I>(0, -(col0 + P - 1)), b1 = std::min<I>(g.kw, p.in_w - col0);
    I b = b0;
    // A chunk whose columns all lie inside the row runs without a test per column (a
    // compare and branch each, P + KB - 1 per chunk): without them 7x7 and 13x13 on
    // 56x56x128 took 7-20% less time (AVX-512 and AVX2 targets, batch 8, 1 and 2 threads).
    auto chunk = [&](auto taps) {
      constexpr int KB = decltype(taps)::value;
      if (col0 + b >= 0 && col0 + b + P + KB - 1 <= p.in_w)
        WideChunk<P, KB, false>(row, col0 + b, p.in_w, w + b * LanesI(), acc);
      else
        WideChunk<P, KB, true>(row, col0 + b, p.in_w, w + b * LanesI(), acc);
      b += KB;
    };
    while (b + kWideTaps <= b1) chunk(std::integral_constant<int, kWideTaps>());
    if (b < b1)
      WithWidth(b1 - b, [&](auto taps) {  // 1 .. kWideTaps - 1
        constexpr int KB = std::min<int>(decltype(taps)::value, kWideTaps - 1);
        chunk(std::integral_constant<int, KB>());
      });
  }
  for (int q = 0; q < P; ++q) StorePx<kTail>(acc[q], out + oh * p.out_row + (ow0 + q) * p.out_px + o0, valid);
}

/// Output rows of the vector at o0, a band at a time: the band's input rows are first
/// copied into `dense` (pixels of L floats). Read in place, the vector's pixels lie C floats
/// apart, and at 128 or 256 channels (512 B or 1 KiB) a row's lines fall in 8 or 4 of L1's
/// 64 sets: the kernel window's rows did not stay in L1, and 13x13 on 56x56x128 ran at half
/// the speed of 8 channels. Dense, 13 rows of 56 pixels take 23 KiB.
template <bool kTail>
void WidePlane(const WideGeo& g, const float* wv, const float* bias, const float* in, float* out,
               I o0, I valid, I band, float* dense) {
  const PassGeo& p = g.p;
  const V init = bias ? LoadPx<kTail>(bias + o0, valid) : hn::Zero(D());
  WideGeo d = g;
  d.p.in_px = LanesI();
  d.p.in_row = p.in_w * LanesI();
  const I ow = p.out_w;
  for (I oh0 = 0; oh0 < p.out_h; oh0 += band) {
    const I oh1 = std::min(p.out_h, oh0 + band);
    // The input rows the band reads: oh - ph + a for a < kh, inside the image.
    const I r0 = std::clamp<I>(oh0 - p.ph, 0, p.in_h);
    const I r1 = std::clamp<I>(oh1 - 1 - p.ph + g.kh, r0, p.in_h);
    GatherRows<kTail>(in + r0 * p.in_row, r1 - r0, p.in_w, p.in_row, p.in_px, o0, valid, 0, dense);
    for (I oh = oh0; oh < oh1; ++oh) {
      I ow0 = 0;
      auto run = [&](auto width) {
        constexpr int P = decltype(width)::value;
        WideBlock<P, kTail>(d, wv, init, dense, r0, out, oh, ow0, o0, valid);
        ow0 += P;
      };
      while (ow0 + kWideBlock <= ow) run(std::integral_constant<int, kWideBlock>());
      if (kWideBlock > 8 && ow0 + 8 <= ow) run(std::integral_constant<int, 8>());
      if (ow0 + 4 <= ow) run(std::integral_constant<int, 4>());
      if (ow0 + 2 <= ow) run(std::integral_constant<int, 2>());
      if (ow0 < ow) run(std::integral_constant<int, 1>());
    }
  }
}

/// The weights of every channel vector, vector-major: tap t of vector v at (v*taps + t)*L,
/// zero in the lanes past the channels; `flip` turns the kernel half a turn (backward-data).
/// One vector's taps are contiguous: from Channels' tap-major rows, C floats apart, 169 or
/// 961 of them fell in 4-8 of L1's sets at 128-256 channels.
hwy::AlignedFreeUniquePtr<float[]> PackByVector(const ConvParams& p, const float* wei, I vectors,
                                                bool flip) {
  const I L = LanesI(), kh = p.k[1], kw = p.k[2], taps = kh * kw, channels = p.g;
  const std::size_t size = static_cast<std::size_t>(vectors * taps * L);
  hwy::AlignedFreeUniquePtr<float[]> w = hwy::AllocateAligned<float>(size);
  std::fill(w.get(), w.get() + size, 0.0f);
  for (I o = 0; o < channels; ++o)
    for (I a = 0; a < kh; ++a)
      for (I b = 0; b < kw; ++b) {
        const I t = flip ? taps - 1 - (a * kw + b) : a * kw + b;
        w[static_cast<std::size_t>(((o / L) * taps + t) * L + o % L)] =
            wei[o * p.wei_s[0] + a * p.wei_s[3] + b * p.wei_s[4]];
      }
  return w;
}

/// Every channel vector of every image. Bands of 4*kh output rows: their copies repeat
/// kh - 1 rows of the band before.
void WideImages(const ConvParams& p, const WideGeo& g, const float* wei, bool flip,
                const float* bias, const float* in, I in_image, float* out, I out_image) {
  const Channels ch(p, 0);
  const I L = LanesI(), taps = g.kh * g.kw;
  const hwy::AlignedFreeUniquePtr<float[]> packed = PackByVector(p, wei, ch.vectors(), flip);
  const std::vector<float> padded = PaddedBias(ch, bias);
  const I band = std::clamp<I>(4 * g.kh, 1, g.p.out_h);
  const I rows = std::min(g.p.in_h, band + g.kh - 1);
  const hwy::AlignedFreeUniquePtr<float[]> dense =
      hwy::AllocateAligned<float>(static_cast<std::size_t>(rows * g.p.in_w * L));
  for (I n = 0; n < p.mb; ++n)
    for (I v = 0; v < ch.vectors(); ++v) {
      const I valid = ch.valid(v);
      const float* wv = packed.get() + v * taps * L;
      const float* b = bias ? padded.data() : nullptr;
      if (valid == L)
        WidePlane<false>(g, wv, b, in + n * in_image, out + n * out_image, v * L, valid, band,
                         dense.get());
      else
        WidePlane<true>(g, wv, b, in + n * in_image, out + n * out_image, v * L, valid, band,
                        dense.get());
    }
}

void FwdWide(const ConvParams& p, const float* src, const float* wei, const float* bias,
             float* dst) {
  const Geo g = GeoOf(p);
  const WideGeo wg{{g.ih, g.iw, g.oh, g.ow, 1, g.ph, g.pw, g.src_row, g.src_px, g.dst_row, g.dst_px},
                   g.kh,
                   g.kw};
  WideImages(p, wg, wei, false, bias, src, p.src_s[0], dst, p.dst_s[0]);
}

void BwdDataWide(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  const Geo g = GeoOf(p);
  const WideGeo wg{{g.oh, g.ow, g.ih, g.iw, 1, g.kh - 1 - g.ph, g.kw - 1 - g.pw, g.dst_row,
                    g.dst_px, g.src_row, g.src_px},
                   g.kh,
                   g.kw};
  WideImages(p, wg, wei, true, nullptr, diff_dst, p.dst_s[0], diff_src, p.src_s[0]);
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(FwdWide);
HWY_EXPORT(BwdDataWide);

bool dwconv_nhwc_wide_supports(const ConvParams& p) {
  return dwconv_nhwc_supports(p) && p.ocg == 1 && p.k[2] >= 5 && p.stride[1] == 1 &&
         p.stride[2] == 1 && p.dilation[1] == 1 && p.dilation[2] == 1;
}

void dwconv_nhwc_wide_fwd_hwy(const ConvParams& p, const float* src, const float* wei,
                              const float* bias, float* dst) {
  HWY_DYNAMIC_DISPATCH(FwdWide)(p, src, wei, bias, dst);
}

void dwconv_nhwc_wide_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                                   float* diff_src) {
  HWY_DYNAMIC_DISPATCH(BwdDataWide)(p, diff_dst, wei, diff_src);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
