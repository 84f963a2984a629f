// The channels-last path for wide kernels at unit stride and dilation (5x5, 7x7, RepLKNet's
// 13x13 and 31x31): forward, and backward-data as the forward of diff_dst with the kernel
// turned half a turn. Multiplier 1 only; dwconv_nhwc.cpp sends everything else to the
// tap-list engine.
//
// One channel vector walks the image row by row. For a block of P outputs of a row and a
// chunk of KB taps of one kernel row, the KB weights stay in registers while the P + KB - 1
// columns under them are loaded once each: P*KB FMAs for P + 2*KB - 1 loads, where one tap
// at a time costs a load per FMA. Columns in the padding are skipped (a test per column,
// none per FMA) and kernel rows in the padding are never visited, so padding is neither
// read nor multiplied.
//
// Included once per SIMD target by dwconv_nhwc.cpp (Highway's foreach_target re-includes
// it), hence the toggled include guard instead of #pragma once.
#if defined(CONVKIT_DWCONV_NHWC_WIDE_INL_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVKIT_DWCONV_NHWC_WIDE_INL_
#undef CONVKIT_DWCONV_NHWC_WIDE_INL_
#else
#define CONVKIT_DWCONV_NHWC_WIDE_INL_
#endif

#include <algorithm>
#include <type_traits>
#include <vector>

#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nhwc_common-inl.hpp"
#include "kernels/dwconv/dwconv_nhwc_k3-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace dwnhwc {

/// Taps per chunk (weights held in registers) and outputs per block (accumulators).
constexpr int kWideTaps = 5;
constexpr int kWideBlock = kManyRegs ? 14 : 6;

/// The wide path takes g when the kernel is at least 5 wide at unit stride and dilation,
/// with multiplier 1.
inline bool TakesWide(const Geo& g, const Channels& ch) {
  return g.kw >= 5 && g.sw == 1 && g.sh == 1 && g.dw == 1 && g.dh == 1 && ch.m() == 1;
}

/// One wide pass as a unit-stride forward convolution of `in` into `out` (K3Geo's fields,
/// sh = 1) with a kh x kw kernel; pads may be negative.
struct WideGeo {
  K3Geo p;
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
/// repacked weights.
template <int P, bool kTail>
HWY_INLINE void WideBlock(const WideGeo& g, const float* const* wt, V init, const float* in,
                          float* out, I oh, I ow0, I o0, I valid) {
  const K3Geo& p = g.p;
  V acc[P];
  for (int q = 0; q < P; ++q) acc[q] = init;
  const I a0 = std::max<I>(0, p.ph - oh), a1 = std::min<I>(g.kh, p.in_h + p.ph - oh);
  for (I a = a0; a < a1; ++a) {
    const float* row = in + (oh - p.ph + a) * p.in_row + o0;
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

template <bool kTail>
void WidePlane(const WideGeo& g, const float* const* wt, const float* bias, const float* in,
               float* out, I o0, I valid) {
  const V init = bias ? LoadPx<kTail>(bias + o0, valid) : hn::Zero(D());
  const I ow = g.p.out_w;
  for (I oh = 0; oh < g.p.out_h; ++oh) {
    I ow0 = 0;
    auto run = [&](auto width) {
      constexpr int P = decltype(width)::value;
      WideBlock<P, kTail>(g, wt, init, in, out, oh, ow0, o0, valid);
      ow0 += P;
    };
    while (ow0 + kWideBlock <= ow) run(std::integral_constant<int, kWideBlock>());
    if (kWideBlock > 8 && ow0 + 8 <= ow) run(std::integral_constant<int, 8>());
    if (ow0 + 4 <= ow) run(std::integral_constant<int, 4>());
    if (ow0 + 2 <= ow) run(std::integral_constant<int, 2>());
    if (ow0 < ow) run(std::integral_constant<int, 1>());
  }
}

/// Every channel vector of one image.
inline void WideImage(const WideGeo& g, const Channels& ch, const float* const* wt,
                      const float* bias, const float* in, float* out) {
  const I L = LanesI();
  for (I v = 0; v < ch.vectors(); ++v) {
    const I valid = ch.valid(v);
    if (valid == L)
      WidePlane<false>(g, wt, bias, in, out, v * L, valid);
    else
      WidePlane<true>(g, wt, bias, in, out, v * L, valid);
  }
}

}  // namespace dwnhwc
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#endif  // include guard
