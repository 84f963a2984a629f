// Depthwise forward and backward-data for channels-last tensors (NHWC / NWC), float32:
// one tap-list engine vectorized along the channels, compiled for AVX2, AVX-512 and a
// portable fallback, chosen at run time. It takes every kernel, stride, dilation and
// multiplier; MobileNet's 3x3 layers and wide kernels at unit stride have faster entries of
// their own (dwconv_nhwc_k3.cpp, dwconv_nhwc_wide.cpp).
//
// Memory walked (channels innermost, pixels and rows at any stride):
//   src  [n][ih][iw][c]        c < C
//   dst  [n][oh][ow][o]        o = c*M + m < O = C*M
//   wr   [kh][kw][o]           the weights repacked per call, zero past O (Channels)
// The caller guarantees dwconv_nhwc_supports(p); taps outside the src image are zero
// padding and are never read.
//
// Forward: a block of P output pixels of one row (P = 6 to 8, dividing the row where it can)
// shares each tap's weight vector, so a tap costs 1 weight load + P src loads for P FMAs,
// and P accumulators stay in registers for the whole tap list. Taps that leave the image for
// some of the block's pixels carry the range of pixels they reach (TapList); 3-, 5- and
// 7-wide kernel rows at unit dilation (w stride 1, or 2 in the forward pass; 5 and 7 without
// a multiplier) run as one sliding pass that loads each src column once (FullRow, RowRun):
// S*(P-1) + K loads for P*K FMAs instead of K*(P+1). Channel vectors are walked in chunks
// small enough that the src rows under the kernel window stay in L2 while the window slides
// (large kernels), and all at once for 3x3.
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
#include <type_traits>
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

/// The taps of a block of P outputs, in two lists: those that read inside the image for all
/// P outputs (output q at in + q * in_step, channel 0), run without tests; and edge taps,
/// where only outputs q in [lo, hi) do (output q at in + (q - lo) * in_step).
/// w is the tap's repacked weights.
class TapList {
 public:
  struct Full {
    const float* in;
    const float* w;
  };
  struct Edge {
    const float* in;
    const float* w;
    I lo, hi;
  };

  /// A whole kernel row of K taps at unit dilation and w stride S: output q, tap k reads the
  /// block's input column c = S*q + k, so one load of a column feeds every tap that reads it.
  /// Columns [c_lo, c_hi) lie inside the image (column c at in + (c - c_lo) * step); the
  /// others are padding and read as zero. Tap k's weights are at w + k * w_step (w_step < 0
  /// walks the row backwards, as backward-data needs).
  struct Row {
    const float* in;
    const float* w;
    I w_step, c_lo, c_hi, step;
  };

  explicit TapList(I capacity)
      : full_(static_cast<std::size_t>(capacity)),
        edge_(static_cast<std::size_t>(capacity)),
        row_(static_cast<std::size_t>(capacity)) {}
  void Clear() { nf_ = ne_ = nr_ = 0; }
  void AddRow(const float* in, const float* w, I w_step, I c_lo, I c_hi, I step) {
    row_[static_cast<std::size_t>(nr_++)] = {in, w, w_step, c_lo, c_hi, step};
  }
  const Row* rows() const { return row_.data(); }
  I row_count() const { return nr_; }
  void Add(const float* in, const float* w, I lo, I hi, I p) {
    if (lo == 0 && hi == p)
      full_[static_cast<std::size_t>(nf_++)] = {in, w};
    else
      edge_[static_cast<std::size_t>(ne_++)] = {in, w, lo, hi};
  }
  const Full* full() const { return full_.data(); }
  const Edge* edge() const { return edge_.data(); }
  I full_count() const { return nf_; }
  I edge_count() const { return ne_; }

 private:
  std::vector<Full> full_;
  std::vector<Edge> edge_;
  std::vector<Row> row_;
  I nf_ = 0, ne_ = 0, nr_ = 0;
};

constexpr int kBlock = 8;  // most output pixels per register block (8 FMA chains)

/// The block width for a run of `count` outputs: a width that divides it when one of 8, 7
/// or 6 does (MobileNet's 112, 56, 28, 14 and 7 are all multiples of 7), so that no block is
/// cut short; a short block would make every tap an edge tap.
inline I BlockWidth(I count) {
  if (count <= kBlock) return count;
  for (I p : {8, 7, 6})
    if (count % p == 0) return p;
  return kBlock;
}

/// The input side of the engine: in the forward pass src pixels, whose lanes are gathered
/// by the multiplier (kMult); in backward-data diff_dst pixels, read directly.
template <bool kMult, bool kSrcIn>
HWY_INLINE V In(const Channels& ch, const float* px, I v) {
  if constexpr (kSrcIn)
    return ch.Src<kMult>(px, v);
  else
    return ch.Direct(px, v);
}

/// One kernel row run on a full vector, without tests or masks: output q, tap k reads column
/// S*q + k; the first column (kLeft) and the last (kRight) may be padding, which adds
/// nothing, so that the blocks at the edges of a row with one column of padding run here too.
template <int P, int K, int S, bool kLeft, bool kRight>
HWY_INLINE void FullRow(const TapList::Row& row, I o0, V (&acc)[P]) {
  const D d;
  V w[K];
  HWY_UNROLL(32)
  for (int k = 0; k < K; ++k) w[k] = hn::LoadU(d, row.w + k * row.w_step + o0);
  const float* in = row.in + o0;  // column kLeft
  constexpr int kColumns = S * (P - 1) + K;
  HWY_UNROLL(32)
  for (int c = kLeft; c < kColumns - kRight; ++c) {
    const V x = hn::LoadU(d, in + (c - kLeft) * row.step);
    HWY_UNROLL(32)
    for (int k = 0; k < K; ++k) {
      if (c - k >= 0 && (c - k) % S == 0 && (c - k) / S < P)
        acc[(c - k) / S] = hn::MulAdd(x, w[k], acc[(c - k) / S]);
    }
  }
}

/// Column C of RowRun, and from tap k on: the FMAs of the outputs that read column C.
template <int P, int K, int S, int C, int k = 0>
HWY_INLINE void ColumnTaps(V x, const V (&w)[K], V (&acc)[P]) {
  if constexpr (k < K) {
    if constexpr (C - k >= 0 && (C - k) % S == 0 && (C - k) / S < P)
      acc[(C - k) / S] = hn::MulAdd(x, w[k], acc[(C - k) / S]);
    ColumnTaps<P, K, S, C, k + 1>(x, w, acc);
  }
}

/// Columns C and up of RowRun.
template <int P, int K, int S, int C, typename Load>
HWY_INLINE void RowColumns(const TapList::Row& row, const Load& load, const V (&w)[K],
                           V (&acc)[P]) {
  if constexpr (C < S * (P - 1) + K) {
    if (C >= row.c_lo && C < row.c_hi)
      ColumnTaps<P, K, S, C>(load(row.in + (C - row.c_lo) * row.step), w, acc);
    RowColumns<P, K, S, C + 1>(row, load, w, acc);
  }
}

/// One kernel row of K = 5 or 7 taps (w stride S): FullRow's walk over the columns, written
/// as templates over constant columns and taps, all forced inline, since GCC left FullRow's
/// loops rolled at these widths (and did not inline lambdas over them at 8 outputs), and the
/// accumulators went to memory. Columns outside [c_lo, c_hi) are padding, skipped by a test
/// per column (the same for every vector of a block); load(px) reads the vector at src
/// pixel px.
template <int P, int K, int S, typename Load>
HWY_INLINE void RowRun(const TapList::Row& row, I o0, const Load& load, V (&acc)[P]) {
  const D d;
  V w[K];
  for (int k = 0; k < K; ++k) w[k] = hn::LoadU(d, row.w + k * row.w_step + o0);
  RowColumns<P, K, S, 0>(row, load, w, acc);
}

/// Which FullRow a block's rows take: 0-3 for kLeft + 2 * kRight, -1 for the checked path.
/// Every row of a block spans the same columns.
template <int P, int K, int S>
int FullRowForm(const TapList& taps, bool vectors_only) {
  constexpr int kColumns = S * (P - 1) + K;
  if (K == 0 || !vectors_only || taps.row_count() == 0) return -1;
  const TapList::Row& row = taps.rows()[0];
  if (row.c_lo > 1 || row.c_hi < kColumns - 1) return -1;
  return (row.c_lo == 1 ? 1 : 0) + (row.c_hi == kColumns - 1 ? 2 : 0);
}

/// Computes the first n (<= P) of P outputs (out + q*out_step) for channel vectors [v0, v1)
/// from nt taps, starting from bias (null: zero). Kernel rows (K > 0) read column S*q + k
/// for output q and tap k; when every row's columns lie inside the image, full vectors take
/// FullRow. A tap that reads inside the image for all P outputs runs unconditionally; edge
/// taps test each output against their range. With kReduce the o vectors go to
/// scratch[q][o] instead, for the caller to sum over the multiplier.
template <int P, int K, int S, bool kMult, bool kSrcIn, bool kReduce>
HWY_INLINE void Block(const Channels& ch, const TapList& taps, I in_step, const float* bias,
                      float* out, I out_step, I n, I v0, I v1, float* scratch) {
  const D d;
  const I L = LanesI();
  const TapList::Full* full = taps.full();
  const TapList::Edge* edge = taps.edge();
  const I nf = taps.full_count(), ne = taps.edge_count();
  constexpr int kColumns = S * (P - 1) + K;
  const int form = FullRowForm<P, K, S>(taps, !kMult && nf == 0 && ne == 0);
  const I full_vectors = ch.o() / L;
  for (I v = v0; v < v1; ++v) {
    const I o0 = v * L;
    V acc[P];
    const V init = bias ? hn::LoadU(d, bias + o0) : hn::Zero(d);
    for (int q = 0; q < P; ++q) acc[q] = init;
    if constexpr (K >= 5) {  // no multiplier (RowWidth): full vectors load unmasked
      const auto unmasked = [&](const float* px) { return hn::LoadU(d, px + o0); };
      const auto tail = [&](const float* px) { return ch.Direct(px, v); };
      for (I r = 0; r < taps.row_count(); ++r) {
        if (v < full_vectors)
          RowRun<P, K, S>(taps.rows()[r], o0, unmasked, acc);
        else
          RowRun<P, K, S>(taps.rows()[r], o0, tail, acc);
      }
    } else if constexpr (K > 0) {  // kernel rows: S*(P-1) + K loads for P * K FMAs
      if (form >= 0 && v < full_vectors) {
        for (I r = 0; r < taps.row_count(); ++r) {
          const TapList::Row& row = taps.rows()[r];
          switch (form) {
            case 0: FullRow<P, K, S, false, false>(row, o0, acc); break;
            case 1: FullRow<P, K, S, true, false>(row, o0, acc); break;
            case 2: FullRow<P, K, S, false, true>(row, o0, acc); break;
            default: FullRow<P, K, S, true, true>(row, o0, acc); break;
          }
        }
      } else {
        for (I r = 0; r < taps.row_count(); ++r) {
          const TapList::Row& row = taps.rows()[r];
          V w[K];
          for (int k = 0; k < K; ++k) w[k] = hn::LoadU(d, row.w + k * row.w_step + o0);
          for (int c = 0; c < kColumns; ++c) {
            if (c < row.c_lo || c >= row.c_hi) continue;  // padding: adds nothing
            const V x = In<kMult, kSrcIn>(ch, row.in + (c - row.c_lo) * row.step, v);
            for (int k = 0; k < K; ++k)
              if (c - k >= 0 && (c - k) % S == 0 && (c - k) / S < P)
                acc[(c - k) / S] = hn::MulAdd(x, w[k], acc[(c - k) / S]);
          }
        }
      }
    }
    for (I t = 0; t < nf; ++t) {
      const float* in = full[t].in;
      const V w = hn::LoadU(d, full[t].w + o0);
      for (int q = 0; q < P; ++q)
        acc[q] = hn::MulAdd(In<kMult, kSrcIn>(ch, in + q * in_step, v), w, acc[q]);
    }
    for (I t = 0; t < ne; ++t) {
      const TapList::Edge& tap = edge[t];
      const V w = hn::LoadU(d, tap.w + o0);
      for (int q = 0; q < P; ++q)
        if (q >= tap.lo && q < tap.hi)
          acc[q] = hn::MulAdd(In<kMult, kSrcIn>(ch, tap.in + (q - tap.lo) * in_step, v), w, acc[q]);
    }
    for (int q = 0; q < P; ++q) {
      if (q >= n) break;
      if constexpr (kReduce)
        hn::StoreU(acc[q], d, scratch + q * ch.op() + o0);
      else
        StoreFirst(acc[q], out + q * out_step + o0, ch.valid(v));
    }
  }
}

/// Block<n> for the block width n (1 to kBlock) chosen at run time.
template <int K, int S, bool kMult, bool kSrcIn, bool kReduce>
void BlockOf(I n, const Channels& ch, const TapList& taps, I in_step, const float* bias, float* out,
             I out_step, I v0, I v1, float* scratch) {
  WithWidth(n, [&](auto width) {
    constexpr int P = std::min(decltype(width)::value, kBlock);  // n <= kBlock
    Block<P, K, S, kMult, kSrcIn, kReduce>(ch, taps, in_step, bias, out, out_step, P, v0, v1,
                                           scratch);
  });
}

/// Kernel widths with a row-run form, at unit dilation and w stride 1 (and 2 in the forward
/// pass, where the row reads columns 2q + k): 3 (FullRow), and 5 and 7 without a multiplier
/// (RowRun; written as loops like FullRow, GCC left them rolled and they measured about 2x
/// slower than single taps). Other widths, strides and dilations use single taps.
inline int RowWidth(const Geo& g, I max_stride, I multiplier) {
  if (g.sw > max_stride || g.dw != 1) return 0;
  if (g.kw == 3) return 3;
  return multiplier == 1 && (g.kw == 5 || g.kw == 7) ? static_cast<int>(g.kw) : 0;
}

/// Calls fn(std::integral_constant<int, K>, std::integral_constant<int, S>) for the row
/// runs of g: K = RowWidth(g, max_stride, multiplier) (0: no row runs) and S the w stride
/// they take.
template <typename Fn>
void WithRowWidth(const Geo& g, I max_stride, I multiplier, Fn&& fn) {
  const auto width = [&](auto k) {
    if (g.sw == 2) return fn(k, std::integral_constant<int, 2>());
    return fn(k, std::integral_constant<int, 1>());
  };
  switch (RowWidth(g, max_stride, multiplier)) {
    case 3: return width(std::integral_constant<int, 3>());
    case 5: return width(std::integral_constant<int, 5>());
    case 7: return width(std::integral_constant<int, 7>());
    default: return fn(std::integral_constant<int, 0>(), std::integral_constant<int, 1>());
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

/// The outputs q in [lo, hi) of a block of n whose input column base + q*step lies in
/// [0, size); false when there are none. step 1 (the common case) needs no division.
inline bool ValidRange(I base, I step, I size, I n, I& lo, I& hi) {
  if (step == 1) {
    lo = std::max<I>(0, -base);
    hi = std::min<I>(n, size - base);
  } else {
    lo = std::max<I>(0, CeilDiv(-base, step));
    hi = std::min<I>(n, FloorDiv(size - 1 - base, step) + 1);
  }
  return lo < hi;
}

template <int K, int S, bool kMult>
void FwdImage(const Geo& g, const Channels& ch, const float* src, const float* bias, float* dst,
              TapList& taps) {
  const I chunk = VectorsPerChunk(g, ch.vectors());
  for (I v0 = 0; v0 < ch.vectors(); v0 += chunk) {
    const I v1 = std::min(ch.vectors(), v0 + chunk);
    for (I oh = 0; oh < g.oh; ++oh) {
      // Valid kernel rows of this output row.
      const I kh0 = std::max<I>(0, CeilDiv(g.ph - oh * g.sh, g.dh));
      const I kh1 = std::min<I>(g.kh, FloorDiv(g.ih - 1 + g.ph - oh * g.sh, g.dh) + 1);
      const I width = BlockWidth(g.ow);
      for (I ow0 = 0; ow0 < g.ow; ow0 += width) {
        const I n = std::min<I>(width, g.ow - ow0);
        taps.Clear();
        for (I a = kh0; a < kh1; ++a) {
          const float* in_row = src + (oh * g.sh - g.ph + a * g.dh) * g.src_row;
          if (K > 0) {  // the block's columns ow0*S - pw + c, c < S*(n-1) + K
            const I first = ow0 * S - g.pw;
            const I c_lo = std::max<I>(0, -first);
            const I c_hi = std::min<I>(S * (n - 1) + K, g.iw - first);
            if (c_lo < c_hi)
              taps.AddRow(in_row + (first + c_lo) * g.src_px, ch.weights(a * g.kw), ch.op(), c_lo,
                          c_hi, g.src_px);
            continue;
          }
          for (I b = 0; b < g.kw; ++b) {
            const I base = ow0 * g.sw - g.pw + b * g.dw;  // src column of output ow0
            I lo = 0, hi = 0;
            if (!ValidRange(base, g.sw, g.iw, n, lo, hi)) continue;
            taps.Add(in_row + (base + lo * g.sw) * g.src_px, ch.weights(a * g.kw + b), lo, hi, n);
          }
        }
        // Step between the src pixels of neighbouring outputs. A stride >= iw leaves each tap
        // one pixel, so the step is never used: clamping it keeps a huge stride from
        // overflowing the product.
        BlockOf<K, S, kMult, true, false>(n, ch, taps, std::min(g.sw, g.iw) * g.src_px, bias,
                                       dst + oh * g.dst_row + ow0 * g.dst_px, g.dst_px, v0, v1,
                                       nullptr);
      }
    }
  }
}

void Fwd(const ConvParams& p, const float* src, const float* wei, const float* bias, float* dst) {
  const Geo g = GeoOf(p);
  Channels ch(p, g.kh * g.kw);
  ch.Repack(p, wei);
  const std::vector<float> bias_padded = PaddedBias(ch, bias);
  TapList taps(g.kh * g.kw);
  for (I n = 0; n < p.mb; ++n) {
    const float* x = src + n * p.src_s[0];
    float* y = dst + n * p.dst_s[0];
    const float* b = bias ? bias_padded.data() : nullptr;
    WithRowWidth(g, 2, ch.m(), [&](auto k, auto s) {
      constexpr int K = decltype(k)::value, S = decltype(s)::value;
      if constexpr (K < 5)  // 5 and 7 wide rows come without a multiplier (RowWidth)
        if (ch.m() > 1) return FwdImage<K, S, true>(g, ch, x, b, y, taps);
      FwdImage<K, S, false>(g, ch, x, b, y, taps);
    });
  }
}

template <int K, bool kReduce>
void BwdDataImage(const Geo& g, const Channels& ch, const float* dy, float* dx, TapList& taps,
                  std::vector<I>& kws, float* scratch) {
  // With a multiplier every vector of a pixel must be done before its sum: one chunk.
  const I chunk = kReduce ? ch.vectors() : VectorsPerChunk(g, ch.vectors());
  for (I v0 = 0; v0 < ch.vectors(); v0 += chunk) {
    const I v1 = std::min(ch.vectors(), v0 + chunk);
    for (I ih = 0; ih < g.ih; ++ih) {
      float* row = dx + ih * g.src_row;
      for (I r = 0; r < std::min(g.sw, g.iw); ++r) {
        // Taps of this column phase: kernel column kw reads ow = b + (r + pw - kw*dw) / sw.
        I nkw = 0;
        for (I b = 0; b < g.kw; ++b) {
          const I t = r + g.pw - b * g.dw;
          if (t % g.sw == 0) kws[static_cast<std::size_t>(nkw++)] = b;
        }
        const I count = CeilDiv(g.iw - r, g.sw);  // columns r, r + sw, ... < iw
        const I width = BlockWidth(count);
        for (I b0 = 0; b0 < count; b0 += width) {
          const I n = std::min<I>(width, count - b0);
          taps.Clear();
          for (I a = 0; a < g.kh; ++a) {
            const I t = ih + g.ph - a * g.dh;
            if (t % g.sh != 0) continue;
            const I oh = t / g.sh;
            if (oh < 0 || oh >= g.oh) continue;
            // Unit w stride and dilation: column b reads ow = b + pw - kw, so the row read
            // backwards from kw = K-1 is a run over ow from b0 + pw - (K-1).
            if (K > 0) {
              const I first = b0 + g.pw - (g.kw - 1);
              const I c_lo = std::max<I>(0, -first), c_hi = std::min<I>(n + K - 1, g.ow - first);
              if (c_lo < c_hi)
                taps.AddRow(dy + oh * g.dst_row + (first + c_lo) * g.dst_px,
                            ch.weights(a * g.kw + g.kw - 1), -ch.op(), c_lo, c_hi, g.dst_px);
              continue;
            }
            for (I k = 0; k < nkw; ++k) {
              const I b = kws[static_cast<std::size_t>(k)];
              const I base = b0 + FloorDiv(r + g.pw - b * g.dw, g.sw);  // ow of column b0
              I lo = 0, hi = 0;
              if (!ValidRange(base, 1, g.ow, n, lo, hi)) continue;
              taps.Add(dy + oh * g.dst_row + (base + lo) * g.dst_px, ch.weights(a * g.kw + b), lo,
                       hi, n);
            }
          }
          float* out = row + (r + b0 * g.sw) * g.src_px;
          const I out_step = std::min(g.sw, g.iw) * g.src_px;  // n == 1 when sw >= iw
          BlockOf<K, 1, false, false, kReduce>(n, ch, taps, g.dst_px, nullptr, out, out_step, v0, v1,
                                            scratch);
          if constexpr (kReduce)
            for (I q = 0; q < n; ++q) ReducePixel(ch, scratch + q * ch.op(), out + q * out_step);
        }
      }
    }
  }
}

void BwdData(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  const Geo g = GeoOf(p);
  Channels ch(p, g.kh * g.kw);
  ch.Repack(p, wei);
  TapList taps(g.kh * g.kw);
  std::vector<I> kws(static_cast<std::size_t>(g.kw));
  std::vector<float> scratch(ch.m() > 1 ? static_cast<std::size_t>(kBlock * ch.op()) : 0);
  for (I n = 0; n < p.mb; ++n) {
    const float* dy = diff_dst + n * p.dst_s[0];
    float* dx = diff_src + n * p.src_s[0];
    WithRowWidth(g, 1, ch.m(), [&](auto k, auto) {
      constexpr int K = decltype(k)::value;
      if constexpr (K < 5)  // 5 and 7 wide rows come without a multiplier (RowWidth)
        if (ch.m() > 1) return BwdDataImage<K, true>(g, ch, dy, dx, taps, kws, scratch.data());
      BwdDataImage<K, false>(g, ch, dy, dx, taps, kws, nullptr);
    });
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
