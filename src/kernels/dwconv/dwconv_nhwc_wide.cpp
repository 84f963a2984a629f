// Depthwise forward and backward-data for channels-last wide kernels (5x5, 7x7, RepLKNet's
// 13x13 and 31x31) at unit stride and dilation with multiplier 1, float32.
//
// Memory walked (channels innermost, pixels and rows at any stride):
//   src  [n][ih][iw][c]   dst  [n][oh][ow][c]   wr [tap][c] (repacked per call)
// The caller guarantees dwconv_nhwc_wide_supports(p); padding is never read nor multiplied.
//
// One channel vector walks the image row by row. For a block of P outputs of a row and a
// chunk of KB taps of one kernel row, the KB weights stay in registers while the P + KB - 1
// columns under them are loaded once each: P*KB FMAs for P + 2*KB - 1 loads, where one tap
// at a time costs a load per FMA. Columns in the padding are skipped (a test per column,
// none per FMA) and kernel rows in the padding are never visited. Backward-data is the
// forward of diff_dst with the kernel turned half a turn.
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

/// Adds taps [k0, k0 + KB) of one kernel row into P accumulators: output q, tap k reads
/// column col0 + q + k of the row at `in` (channel offset included); columns outside
/// [0, in_w) are padding and skipped.
template <int P, int KB, bool kTail>
HWY_INLINE void WideChunk(const float* in, I col0, I in_w, I in_px, const float* const* w, I o0,
                          I valid, V (&acc)[P]) {
  const D d;
  V wv[KB];
  HWY_UNROLL(16)
  for (int k = 0; k < KB; ++k) wv[k] = hn::LoadU(d, w[k] + o0);
  HWY_UNROLL(32)
  for (int c = 0; c < P + KB - 1; ++c) {
    const I col = col0 + c;
    if (col < 0 || col >= in_w) continue;
    const V x = LoadPx<kTail>(in + col * in_px, valid);
    HWY_UNROLL(16)
    for (int k = 0; k < KB; ++k)
      if (c - k >= 0 && c - k < P) acc[c - k] = hn::MulAdd(x, wv[k], acc[c - k]);
  }
}

/// P outputs from ow0 of output row oh for the vector at o0; wt[a*kw + b] is tap (a, b)'s
/// repacked weights. `in` holds the vector's input rows from row0 on, dense (g.p's in_row
/// and in_px are the copy's).
template <int P, bool kTail>
HWY_INLINE void WideBlock(const WideGeo& g, const float* const* wt, V init, const float* in,
                          I row0, float* out, I oh, I ow0, I o0, I valid) {
  const PassGeo& p = g.p;
  V acc[P];
  for (int q = 0; q < P; ++q) acc[q] = init;
  const I a0 = std::max<I>(0, p.ph - oh), a1 = std::min<I>(g.kh, p.in_h + p.ph - oh);
  for (I a = a0; a < a1; ++a) {
    const float* row = in + (oh - p.ph + a - row0) * p.in_row;
    const float* const* w = wt + a * g.kw;
    // Chunks whose columns all lie in the padding add nothing.
    const I col0 = ow0 - p.pw;
    const I b0 = std::max<I>(0, -(col0 + P - 1)), b1 = std::min<I>(g.kw, p.in_w - col0);
    I b = b0;
    for (; b + kWideTaps <= b1; b += kWideTaps)
      WideChunk<P, kWideTaps, kTail>(row, col0 + b, p.in_w, p.in_px, w + b, o0, valid, acc);
    if (b < b1)
      WithWidth(b1 - b, [&](auto taps) {  // 1 .. kWideTaps - 1
        constexpr int KB = std::min<int>(decltype(taps)::value, kWideTaps - 1);
        WideChunk<P, KB, kTail>(row, col0 + b, p.in_w, p.in_px, w + b, o0, valid, acc);
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
void WidePlane(const WideGeo& g, const float* const* wt, const float* bias, const float* in,
               float* out, I o0, I valid, I band, float* dense) {
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
        WideBlock<P, kTail>(d, wt, init, dense, r0, out, oh, ow0, o0, valid);
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

/// Every channel vector of one image. Bands of 4*kh output rows: their copies repeat
/// kh - 1 rows of the band before.
inline void WideImage(const WideGeo& g, const Channels& ch, const float* const* wt,
                      const float* bias, const float* in, float* out) {
  const I L = LanesI();
  const I band = std::clamp<I>(4 * g.kh, 1, g.p.out_h);
  const I rows = std::min(g.p.in_h, band + g.kh - 1);
  const hwy::AlignedFreeUniquePtr<float[]> dense =
      hwy::AllocateAligned<float>(static_cast<std::size_t>(rows * g.p.in_w * L));
  for (I v = 0; v < ch.vectors(); ++v) {
    const I valid = ch.valid(v);
    if (valid == L)
      WidePlane<false>(g, wt, bias, in, out, v * L, valid, band, dense.get());
    else
      WidePlane<true>(g, wt, bias, in, out, v * L, valid, band, dense.get());
  }
}

void FwdWide(const ConvParams& p, const float* src, const float* wei, const float* bias,
             float* dst) {
  const Geo g = GeoOf(p);
  Channels ch(p, g.kh * g.kw);
  ch.Repack(p, wei);
  const std::vector<float> padded = PaddedBias(ch, bias);
  const WideGeo wg{{g.ih, g.iw, g.oh, g.ow, 1, g.ph, g.pw, g.src_row, g.src_px, g.dst_row, g.dst_px},
                   g.kh,
                   g.kw};
  std::vector<const float*> wt(static_cast<std::size_t>(g.kh * g.kw));
  for (I t = 0; t < g.kh * g.kw; ++t) wt[static_cast<std::size_t>(t)] = ch.weights(t);
  for (I n = 0; n < p.mb; ++n)
    WideImage(wg, ch, wt.data(), bias ? padded.data() : nullptr, src + n * p.src_s[0],
              dst + n * p.dst_s[0]);
}

void BwdDataWide(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  const Geo g = GeoOf(p);
  Channels ch(p, g.kh * g.kw);
  ch.Repack(p, wei);
  const WideGeo wg{{g.oh, g.ow, g.ih, g.iw, 1, g.kh - 1 - g.ph, g.kw - 1 - g.pw, g.dst_row,
                    g.dst_px, g.src_row, g.src_px},
                   g.kh,
                   g.kw};
  const I taps = g.kh * g.kw;
  std::vector<const float*> wt(static_cast<std::size_t>(taps));
  for (I t = 0; t < taps; ++t) wt[static_cast<std::size_t>(t)] = ch.weights(taps - 1 - t);
  for (I n = 0; n < p.mb; ++n)
    WideImage(wg, ch, wt.data(), nullptr, diff_dst + n * p.dst_s[0], diff_src + n * p.src_s[0]);
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
