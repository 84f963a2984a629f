// Depthwise forward and backward-data for channels-last tensors (NHWC / NWC), float32:
// one tap-list engine vectorized along the channels, compiled for AVX2, AVX-512 and a
// portable fallback, chosen at run time.
//
// Memory walked (channels innermost, pixels and rows at any stride):
//   src  [n][ih][iw][c]        c < C
//   dst  [n][oh][ow][o]        o = c*M + m < O = C*M
//   wr   [kh][kw][o]           the weights repacked per call, zero past O (Channels)
// The caller guarantees dwconv_nhwc_supports(p); taps outside the src image are zero
// padding and are never read.
//
// Forward: a block of P output pixels of one row shares each tap's weight vector, so a
// tap costs 1 weight load + P src loads for P FMAs, and P accumulators stay in registers
// for the whole tap list. Channel vectors are walked in chunks small enough that the src
// rows under the kernel window stay in L2 while the window slides (large kernels), and all
// at once for 3x3 (the window is tiny). Columns whose window leaves the row are done one
// pixel at a time with only their valid taps.
//
// Backward-data gathers: diff_src pixel (ih, iw) sums the taps with ih = oh*sh - ph + kh*dh
// and iw = ow*sw - pw + kw*dw. Its columns are taken per phase r = iw mod sw: inside one
// phase the same kw are valid and ow = b + (r + pw - kw*dw) / sw for iw = r + sw*b, so the
// forward engine runs unchanged with diff_dst as input (step 1 pixel) and diff_src as
// output (step sw pixels). With a multiplier the M products of a src channel land in
// adjacent lanes of the o vectors; they are summed per pixel after the taps.
#include "kernels/dwconv/dwconv_nhwc.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS ((HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL) & ~(HWY_BASELINE_TARGETS))
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nhwc.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nhwc_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

using namespace dwnhwc;  // NOLINT(google-build-using-namespace): this target's helpers

/// One tap of a block: the input pixel it reads for the block's first output (channel 0)
/// and its repacked weights.
struct Tap {
  const float* in;
  const float* w;
};

constexpr int kBlock = kManyRegs ? 8 : 4;  // output pixels per register block

/// The input side of the engine: in the forward pass src pixels, whose lanes are gathered
/// by the multiplier (kMult); in backward-data diff_dst pixels, read directly.
template <bool kMult, bool kSrcIn>
HWY_INLINE V In(const Channels& ch, const float* px, I v) {
  if constexpr (kSrcIn)
    return ch.Src<kMult>(px, v);
  else
    return ch.Direct(px, v);
}

/// Computes P output pixels (out + p*out_step) for channel vectors [v0, v1) from nt taps,
/// each reading in + p*in_step. Starts from bias (may be null: zero). With kReduce the o
/// vectors go to scratch[p][o] instead, for the caller to sum over the multiplier.
template <int P, bool kMult, bool kSrcIn, bool kReduce>
HWY_INLINE void Block(const Channels& ch, const Tap* taps, I nt, I in_step, const float* bias,
                      float* out, I out_step, I v0, I v1, float* scratch) {
  const D d;
  const I L = LanesI();
  for (I v = v0; v < v1; ++v) {
    const I o0 = v * L;
    V acc[P];
    const V init = bias ? hn::LoadU(d, bias + o0) : hn::Zero(d);
    for (int q = 0; q < P; ++q) acc[q] = init;
    for (I t = 0; t < nt; ++t) {
      const V w = hn::LoadU(d, taps[t].w + o0);
      for (int q = 0; q < P; ++q)
        acc[q] = hn::MulAdd(In<kMult, kSrcIn>(ch, taps[t].in + q * in_step, v), w, acc[q]);
    }
    for (int q = 0; q < P; ++q) {
      if constexpr (kReduce)
        hn::StoreU(acc[q], d, scratch + q * ch.op() + o0);
      else
        StoreFirst(acc[q], out + q * out_step + o0, ch.valid(v));
    }
  }
}

/// Sums the M adjacent o lanes of each src channel: out[c] = sum_m scratch[c*M + m].
inline void ReducePixel(const Channels& ch, const float* scratch, float* out) {
  for (I c = 0; c < ch.c(); ++c) {
    float s = 0.0f;
    for (I m = 0; m < ch.m(); ++m) s += scratch[c * ch.m() + m];
    out[c] = s;
  }
}

/// Runs `count` outputs (out + j*out_step, j < count) whose taps are `taps` at input step
/// in_step, in blocks of P then single pixels, for channel vectors [v0, v1).
template <bool kMult, bool kSrcIn, bool kReduce>
void Run(const Channels& ch, std::vector<Tap>& taps, I nt, I in_step, const float* bias, float* out,
         I out_step, I count, I v0, I v1, float* scratch) {
  I j = 0;
  for (; j + kBlock <= count; j += kBlock) {
    Block<kBlock, kMult, kSrcIn, kReduce>(ch, taps.data(), nt, in_step, bias, out, out_step, v0, v1,
                                          scratch);
    if constexpr (kReduce)
      for (int q = 0; q < kBlock; ++q) ReducePixel(ch, scratch + q * ch.op(), out + q * out_step);
    for (I t = 0; t < nt; ++t) taps[static_cast<std::size_t>(t)].in += kBlock * in_step;
    out += kBlock * out_step;
  }
  for (; j < count; ++j) {
    Block<1, kMult, kSrcIn, kReduce>(ch, taps.data(), nt, in_step, bias, out, out_step, v0, v1,
                                     scratch);
    if constexpr (kReduce) ReducePixel(ch, scratch, out);
    for (I t = 0; t < nt; ++t) taps[static_cast<std::size_t>(t)].in += in_step;
    out += out_step;
  }
}

template <bool kMult>
void FwdImage(const Geo& g, const Channels& ch, const float* src, const float* bias, float* dst,
              std::vector<Tap>& taps) {
  I lo = 0, hi = 0;
  InteriorColumns(g, 0, g.kw, lo, hi);
  const I chunk = VectorsPerChunk(g, ch.vectors());
  for (I v0 = 0; v0 < ch.vectors(); v0 += chunk) {
    const I v1 = std::min(ch.vectors(), v0 + chunk);
    for (I oh = 0; oh < g.oh; ++oh) {
      float* row = dst + oh * g.dst_row;
      // Valid kernel rows of this output row.
      const I kh0 = std::max<I>(0, CeilDiv(g.ph - oh * g.sh, g.dh));
      const I kh1 = std::min<I>(g.kh, FloorDiv(g.ih - 1 + g.ph - oh * g.sh, g.dh) + 1);
      // Columns whose taps may leave the row: one at a time, valid taps only.
      auto edge = [&](I ow) {
        I nt = 0;
        for (I a = kh0; a < kh1; ++a) {
          const float* in_row = src + (oh * g.sh - g.ph + a * g.dh) * g.src_row;
          for (I b = 0; b < g.kw; ++b) {
            const I iw = ow * g.sw - g.pw + b * g.dw;
            if (iw < 0 || iw >= g.iw) continue;
            taps[static_cast<std::size_t>(nt++)] = {in_row + iw * g.src_px,
                                                    ch.weights(a * g.kw + b)};
          }
        }
        Run<kMult, true, false>(ch, taps, nt, 0, bias, row + ow * g.dst_px, 0, 1, v0, v1, nullptr);
      };
      for (I ow = 0; ow < std::min(lo, g.ow); ++ow) edge(ow);
      if (lo < hi) {
        I nt = 0;
        for (I a = kh0; a < kh1; ++a) {
          const float* in_row = src + (oh * g.sh - g.ph + a * g.dh) * g.src_row;
          for (I b = 0; b < g.kw; ++b)
            taps[static_cast<std::size_t>(nt++)] = {
                in_row + (lo * g.sw - g.pw + b * g.dw) * g.src_px, ch.weights(a * g.kw + b)};
        }
        Run<kMult, true, false>(ch, taps, nt, g.sw * g.src_px, bias, row + lo * g.dst_px, g.dst_px,
                                hi - lo, v0, v1, nullptr);
      }
      for (I ow = std::max(hi, lo); ow < g.ow; ++ow) edge(ow);
    }
  }
}

void Fwd(const ConvParams& p, const float* src, const float* wei, const float* bias, float* dst) {
  const Geo g = GeoOf(p);
  Channels ch(p, g.kh * g.kw);
  ch.Repack(p, wei);
  std::vector<float> bias_padded;
  if (bias) {
    bias_padded.assign(static_cast<std::size_t>(ch.op()), 0.0f);
    std::copy(bias, bias + ch.o(), bias_padded.begin());
  }
  std::vector<Tap> taps(static_cast<std::size_t>(g.kh * g.kw));
  for (I n = 0; n < p.mb; ++n) {
    const float* x = src + n * p.src_s[0];
    float* y = dst + n * p.dst_s[0];
    const float* b = bias ? bias_padded.data() : nullptr;
    if (ch.m() > 1)
      FwdImage<true>(g, ch, x, b, y, taps);
    else
      FwdImage<false>(g, ch, x, b, y, taps);
  }
}

template <bool kReduce>
void BwdDataImage(const Geo& g, const Channels& ch, const float* dy, float* dx,
                  std::vector<Tap>& taps, std::vector<I>& kws, float* scratch) {
  // With a multiplier every vector of a pixel must be done before its sum: one chunk.
  const I chunk = kReduce ? ch.vectors() : VectorsPerChunk(g, ch.vectors());
  for (I v0 = 0; v0 < ch.vectors(); v0 += chunk) {
    const I v1 = std::min(ch.vectors(), v0 + chunk);
    for (I ih = 0; ih < g.ih; ++ih) {
      float* row = dx + ih * g.src_row;
      for (I r = 0; r < std::min(g.sw, g.iw); ++r) {
        // Taps of this column phase, and the output offset b -> ow = b + off(kw) they read.
        I nkw = 0, off_min = 0, off_max = 0;
        for (I b = 0; b < g.kw; ++b) {
          const I t = r + g.pw - b * g.dw;
          if (FloorDiv(t, g.sw) * g.sw != t) continue;
          const I off = t / g.sw;
          if (nkw == 0) off_min = off_max = off;
          off_min = std::min(off_min, off), off_max = std::max(off_max, off);
          kws[static_cast<std::size_t>(nkw++)] = b;
        }
        const I count = (g.iw - r + g.sw - 1) / g.sw;  // columns r, r + sw, ... < iw
        auto taps_for = [&](I b0, bool check) {
          I nt = 0;
          for (I a = 0; a < g.kh; ++a) {
            const I t = ih + g.ph - a * g.dh;
            if (FloorDiv(t, g.sh) * g.sh != t) continue;
            const I oh = t / g.sh;
            if (oh < 0 || oh >= g.oh) continue;
            for (I k = 0; k < nkw; ++k) {
              const I b = kws[static_cast<std::size_t>(k)];
              const I ow = b0 + (r + g.pw - b * g.dw) / g.sw;
              if (check && (ow < 0 || ow >= g.ow)) continue;
              taps[static_cast<std::size_t>(nt++)] = {dy + oh * g.dst_row + ow * g.dst_px,
                                                      ch.weights(a * g.kw + b)};
            }
          }
          return nt;
        };
        // Columns b whose every tap's ow lies in [0, ow): the unchecked stretch.
        const I lo = nkw ? std::clamp<I>(-off_min, 0, count) : count;
        const I hi = nkw ? std::clamp<I>(g.ow - off_max, lo, count) : count;
        const I step = g.sw * g.src_px;
        for (I b = 0; b < count; ++b) {
          if (b == lo && lo < hi) {
            const I nt = taps_for(lo, false);
            Run<false, false, kReduce>(ch, taps, nt, g.dst_px, nullptr,
                                       row + (r + lo * g.sw) * g.src_px, step, hi - lo, v0, v1,
                                       scratch);
            b = hi - 1;
            continue;
          }
          const I nt = taps_for(b, true);
          Run<false, false, kReduce>(ch, taps, nt, 0, nullptr, row + (r + b * g.sw) * g.src_px, 0,
                                     1, v0, v1, scratch);
        }
      }
    }
  }
}

void BwdData(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  const Geo g = GeoOf(p);
  Channels ch(p, g.kh * g.kw);
  ch.Repack(p, wei);
  std::vector<Tap> taps(static_cast<std::size_t>(g.kh * g.kw));
  std::vector<I> kws(static_cast<std::size_t>(g.kw));
  std::vector<float> scratch(ch.m() > 1 ? static_cast<std::size_t>(kBlock * ch.op()) : 0);
  for (I n = 0; n < p.mb; ++n) {
    const float* dy = diff_dst + n * p.dst_s[0];
    float* dx = diff_src + n * p.src_s[0];
    if (ch.m() > 1)
      BwdDataImage<true>(g, ch, dy, dx, taps, kws, scratch.data());
    else
      BwdDataImage<false>(g, ch, dy, dx, taps, kws, nullptr);
  }
}

}  // namespace
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(Fwd);
HWY_EXPORT(BwdData);

bool dwconv_nhwc_supports(const ConvParams& p) {
  // Strides of extent-1 slots are not checked: src/ops/ leaves the unused ones at 0.
  const auto& k = p.k;
  return p.icg == 1 && p.ocg >= 1 && p.g >= 1 && k[0] == 1 && p.in[0] == 1 && p.out[0] == 1 &&
         p.pad[0] == 0 && p.src_s[1] == 1 && p.dst_s[1] == 1 && p.wei_s[4] == 1 &&
         (k[1] == 1 || p.wei_s[3] == k[2]) && p.wei_s[0] == k[1] * k[2];
}

void dwconv_nhwc_fwd_hwy(const ConvParams& p, const float* src, const float* wei, const float* bias,
                         float* dst) {
  HWY_DYNAMIC_DISPATCH(Fwd)(p, src, wei, bias, dst);
}

void dwconv_nhwc_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                              float* diff_src) {
  HWY_DYNAMIC_DISPATCH(BwdData)(p, diff_dst, wei, diff_src);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
