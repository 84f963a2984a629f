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
// their own in dwconv_nhwc_bwdw_k3.cpp and dwconv_nhwc_bwdw_wide.cpp; 5- and 7-wide rows at
// w stride 1 or 2 take row runs, RunImage below): for one output row and kernel row, a block
// of KB kernel columns keeps KB accumulators per channel vector and slides along the output
// columns where all KB taps read inside the row: one diff_dst load feeds KB FMAs. Columns
// where some tap leaves the row are done per tap. The sums go into a float accumulator per
// tap and channel for the image, and the images' sums into doubles in image order, so the
// result does not depend on how the caller cut the channels into calls.
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

// Row runs, for kernels 5 and 7 wide at w stride 1 or 2 without a multiplier or w dilation
// (the stride-2 layers of EfficientNet-like models): a block of P output columns loads its P
// diff_dst vectors and each src column under it once, column c (src column ow0*S - pw + c)
// feeding tap k of output q = (c - k) / S: P + S*(P-1) + K loads for P*K FMAs, where Columns
// loads a src vector per FMA and leaves the row's edges to one tap at a time. A kernel row's
// sums stay in registers over the whole image, in kRunSets sets (outputs q mod kRunSets) so
// that enough FMA chains are in flight. Rows take blocks of one width P: 6, 7 or 8 dividing
// the row, or the whole row of 4 to 8.
constexpr int kRunSets = kManyRegs ? 2 : 1;

/// The block width P of RunImage for rows of ow outputs; 0 when none fits.
inline I RunWidth(I ow) {
  if (ow < 4) return 0;  // rows this short: RunRows<1, 5, 2> crashed GCC 12 (esra)
  if (ow <= 8) return ow;
  for (I w : {8, 7, 6})
    if (ow % w == 0) return w;
  return 0;
}

/// Column C's FMAs from tap k on: each output q = (C - k) / S of the block that reads it.
template <int P, int K, int S, int C, int k = 0>
HWY_INLINE void RunTaps(V x, const V (&dy)[P], V (&sum)[kRunSets][K]) {
  if constexpr (k < K) {
    if constexpr (C - k >= 0 && (C - k) % S == 0 && (C - k) / S < P) {
      constexpr int q = (C - k) / S;
      sum[q % kRunSets][k] = hn::MulAdd(dy[q], x, sum[q % kRunSets][k]);
    }
    RunTaps<P, K, S, C, k + 1>(x, dy, sum);
  }
}

/// The block's columns C and up; those outside [c_lo, c_hi) are padding (column c at
/// x + (c - c_lo) * step).
template <int P, int K, int S, int C, typename Load>
HWY_INLINE void RunColumns(const float* x, I c_lo, I c_hi, I step, const Load& load,
                           const V (&dy)[P], V (&sum)[kRunSets][K]) {
  if constexpr (C < S * (P - 1) + K) {
    if (C >= c_lo && C < c_hi) RunTaps<P, K, S, C>(load(x + (C - c_lo) * step), dy, sum);
    RunColumns<P, K, S, C + 1>(x, c_lo, c_hi, step, load, dy, sum);
  }
}

/// Kernel row a's sums over the image for one channel vector; load(px) reads its vector at
/// pixel px.
template <int P, int K, int S, typename Load>
HWY_INLINE void RunRows(const Geo& g, const float* x, const float* dy, I a, const Load& load,
                        V (&sum)[kRunSets][K]) {
  for (I oh = 0; oh < g.oh; ++oh) {
    const I ih = oh * g.sh - g.ph + a * g.dh;
    if (ih < 0 || ih >= g.ih) continue;
    const float* x_row = x + ih * g.src_row;
    const float* dy_row = dy + oh * g.dst_row;
    for (I ow0 = 0; ow0 < g.ow; ow0 += P) {
      V d_out[P];
      for (int q = 0; q < P; ++q) d_out[q] = load(dy_row + (ow0 + q) * g.dst_px);
      const I first = ow0 * S - g.pw;  // the src column of the block's column 0
      const I c_lo = std::max<I>(0, -first);
      const I c_hi = std::min<I>(S * (P - 1) + K, g.iw - first);
      if (c_lo < c_hi)
        RunColumns<P, K, S, 0>(x_row + (first + c_lo) * g.src_px, c_lo, c_hi, g.src_px, load,
                               d_out, sum);
    }
  }
}

/// Adds one image's products into acc[tap][o], kernel row after kernel row of each vector.
template <int P, int K, int S>
void RunImage(const Geo& g, const Channels& ch, const float* x, const float* dy, float* acc) {
  const D d;
  const I full_vectors = ch.o() / LanesI();
  for (I v = 0; v < ch.vectors(); ++v) {
    const I o0 = v * LanesI();
    for (I a = 0; a < g.kh; ++a) {
      V sum[kRunSets][K];
      for (auto& set : sum)
        for (V& one : set) one = hn::Zero(d);
      if (v < full_vectors)
        RunRows<P, K, S>(g, x, dy, a, [&](const float* px) { return hn::LoadU(d, px + o0); }, sum);
      else
        RunRows<P, K, S>(g, x, dy, a, [&](const float* px) { return ch.Direct(px, v); }, sum);
      for (int k = 0; k < K; ++k) {
        V total = sum[0][k];
        for (int set = 1; set < kRunSets; ++set) total = hn::Add(total, sum[set][k]);
        float* out = acc + (a * g.kw + k) * ch.op() + o0;
        hn::StoreU(hn::Add(hn::LoadU(d, out), total), d, out);
      }
    }
  }
}

/// Calls fn(P, K, S) as integral constants when g takes RunImage; false when it does not.
template <typename Fn>
bool WithRun(const Geo& g, const Channels& ch, Fn&& fn) {
  const I width = RunWidth(g.ow);
  if (ch.m() != 1 || g.dw != 1 || width == 0 || (g.kw != 5 && g.kw != 7) ||
      (g.sw != 1 && g.sw != 2))
    return false;
  WithWidth(width, [&](auto p) {
    if constexpr (decltype(p)::value >= 4 && decltype(p)::value <= 8) {
      const auto stride = [&](auto k) {
        if (g.sw == 2) return fn(p, k, std::integral_constant<int, 2>());
        return fn(p, k, std::integral_constant<int, 1>());
      };
      if (g.kw == 5) return stride(std::integral_constant<int, 5>());
      return stride(std::integral_constant<int, 7>());
    }
  });
  return true;
}

void BwdWeights(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
  const Geo g = GeoOf(p);
  const Channels ch(p, g.kh * g.kw);
  const bool run = WithRun(g, ch, [&](auto pw, auto kw, auto sw) {
    constexpr int P = decltype(pw)::value, K = decltype(kw)::value, S = decltype(sw)::value;
    ReduceImages(p, ch, src, diff_dst, diff_wei, [&](const float* x, const float* dy, float* acc) {
      RunImage<P, K, S>(g, ch, x, dy, acc);
    });
  });
  if (run) return;
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
