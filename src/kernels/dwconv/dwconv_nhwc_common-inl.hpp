// Shared pieces of the channels-last depthwise Highway kernels: channel vectors with tails and
// multipliers, repacked weights, the geometry of one image.
//
// Included once per SIMD target by dwconv_nhwc*.cpp (Highway's foreach_target re-includes
// them), hence the toggled include guard instead of #pragma once.
#if defined(CONVKIT_DWCONV_NHWC_COMMON_INL_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVKIT_DWCONV_NHWC_COMMON_INL_
#undef CONVKIT_DWCONV_NHWC_COMMON_INL_
#else
#define CONVKIT_DWCONV_NHWC_COMMON_INL_
#endif

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "kernels/conv/conv_params.hpp"
#include "kernels/dwconv/dwconv_nchw_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace dwnhwc {

namespace hn = hwy::HWY_NAMESPACE;
using I = std::int64_t;
using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;

// The target facts and division helpers the NCHW kernels already define.
using dwnchw::CeilDiv;
using dwnchw::FloorDiv;
using dwnchw::kHardwareMask;
using dwnchw::kManyRegs;
inline I LanesI() { return static_cast<I>(hn::Lanes(D())); }

/// fn(std::integral_constant<int, N>()) with N = n, for n in 1..8 and 16: register blocks
/// whose size is known only at run time get their compile-time instance.
template <typename Fn>
HWY_INLINE void WithWidth(I n, Fn&& fn) {
  switch (n) {
    case 1:
      return fn(std::integral_constant<int, 1>());
    case 2:
      return fn(std::integral_constant<int, 2>());
    case 3:
      return fn(std::integral_constant<int, 3>());
    case 4:
      return fn(std::integral_constant<int, 4>());
    case 5:
      return fn(std::integral_constant<int, 5>());
    case 6:
      return fn(std::integral_constant<int, 6>());
    case 7:
      return fn(std::integral_constant<int, 7>());
    case 8:
      return fn(std::integral_constant<int, 8>());
    default:
      return fn(std::integral_constant<int, 16>());
  }
}

/// The most outputs a tile of the 3x3 tile walks holds (forward and backward-data's Tiles3,
/// backward-weights' WeightTileImages): their sums or diff_dst vectors, one kernel row's 3
/// weights or sums and a column fit in 16 vector registers (AVX2).
constexpr I kTileMax = 8;

/// The geometry both 3x3 tile walks need: input rows of at most 2 * kTileMax pixels at w
/// stride sw (1 or 2) with PyTorch's 'same' padding of 1 (so that only a tile's first and
/// last columns can leave the row), and kernel rows that leave the image only at its top or
/// bottom (ph = 1, unit h dilation, at least 2 rows, every output row's middle kernel row
/// inside the image).
inline bool TileGeometry(I sw, I in_w, I out_w, I pw, I in_h, I out_h, I sh, I ph, I dh) {
  const bool cols = pw == 1 && in_w >= 2 && in_w <= 2 * kTileMax &&
                    ((sw == 1 && out_w == in_w) || (sw == 2 && out_w == (in_w + 1) / 2));
  return cols && ph == 1 && dh == 1 && in_h >= 2 && (out_h - 1) * sh + 1 <= in_h;
}

/// One output row of a tile walk: out_w outputs at w stride SW over in_w input pixels with
/// 'same' padding of 1, split evenly into tiles of at most kTileMax outputs (14 as 7 + 7,
/// 10 as 5 + 5). Calls fn(ow0, width, left, right) per tile, width an
/// std::integral_constant; `left`: the tile's first input column lies left of the image,
/// `right`: its last lies right of it.
template <int SW, typename Fn>
HWY_INLINE void ForEachTile(I out_w, I in_w, Fn&& fn) {
  const I tiles = (out_w + kTileMax - 1) / kTileMax;
  const I step = (out_w + tiles - 1) / tiles;
  for (I ow0 = 0; ow0 < out_w; ow0 += step) {
    const I n = std::min(step, out_w - ow0);
    const bool left = ow0 == 0, right = SW * (ow0 + n - 1) + 1 >= in_w;
    WithWidth(n, [&](auto width) {
      if constexpr (decltype(width)::value <= kTileMax) fn(ow0, width, left, right);
    });
  }
}

/// The input column ow0 * SW (a tile's column 1) of each kernel row in kRows (bit a: base[a]
/// is row a's column 0), null for the others. Column 0 of a tile starting at ow0 = 0 lies
/// left of the image: a tile loads column j at col[a] + (j - 1) * px, and never j = 0 there.
template <int SW, unsigned kRows>
HWY_INLINE void TileColumns(const float* const (&base)[3], I ow0, I px, const float* (&col)[3]) {
  for (int a = 0; a < 3; ++a) col[a] = ((kRows >> a) & 1u) ? base[a] + ow0 * SW * px : nullptr;
}

/// fn(std::integral_constant<unsigned, M>()) for the kernel rows M (bit a: row a lies inside
/// the image) of a tile walk's output row: 7, 6 (the top row) or 3 (the bottom row).
template <typename Fn>
HWY_INLINE void WithRows(unsigned rows, Fn&& fn) {
  if (rows == 7u)
    fn(std::integral_constant<unsigned, 7u>());
  else if (rows == 6u)
    fn(std::integral_constant<unsigned, 6u>());
  else
    fn(std::integral_constant<unsigned, 3u>());
}

/// Asks for the cache line at p. A prefetch builtin counts for GCC as a read of unknown
/// memory, so it stored the 3x3 backward-weights' 9 sums before every one; this asm reads
/// nothing it can see.
HWY_INLINE void Touch(const float* p) {
#if HWY_ARCH_X86
  asm volatile("prefetcht0 (%0)" : : "r"(p));
#else
  hwy::Prefetch(p);
#endif
}

/// Whether the 3x3 walks over an image whose walked tensor holds `image_bytes` prefetch the
/// lines the next channel vectors will read: images of 1 MiB and more come from memory, and
/// the hardware did not fetch those strided lines ahead in time; smaller ones stay in L3,
/// where the prefetches only cost.
inline bool PrefetchAhead(I image_bytes) { return image_bytes >= (I{1} << 20); }

/// The first n lanes (0 < n <= L) of p, zero elsewhere; reads nothing past p[n).
HWY_INLINE V LoadFirst(const float* p, I n) { return dwnchw::LoadFirst(D(), p, n); }

/// Stores the first n lanes (0 < n <= L) of v at p; writes nothing past p[n).
HWY_INLINE void StoreFirst(V v, float* p, I n) { dwnchw::StoreFirst(D(), v, p, n); }

/// Loads one channel vector of a pixel: all lanes, or the first `valid` of the tail vector.
template <bool kTail>
HWY_INLINE V LoadPx(const float* p, I valid) {
  if constexpr (kTail)
    return LoadFirst(p, valid);
  else
    return hn::LoadU(D(), p);
}

template <bool kTail>
HWY_INLINE void StorePx(V v, float* p, I valid) {
  if constexpr (kTail)
    StoreFirst(v, p, valid);
  else
    hn::StoreU(v, D(), p);
}

/// Output channels o = c*M + m of one call, walked in vectors of L lanes:
///   vector v holds o in [v*L, v*L + L); the last one may be partial (o < O only);
///   with a multiplier (M > 1) its src lanes are src channels o / M, which `Permuted`
///   gathers from one load of the channels starting at (v*L) / M.
/// Also holds the repacked weights wr[tap][o] (tap = kh*KW + kw, rows padded to Op floats,
/// zero past O) so that a tap's weights for a vector are one aligned-free load.
class Channels {
 public:
  Channels(const ConvParams& p, I taps) : c_(p.g), m_(p.ocg), o_(p.g * p.ocg) {
    const I L = LanesI();
    nv_ = (o_ + L - 1) / L;
    op_ = nv_ * L;
    if (m_ > 1) {
      idx_.assign(static_cast<std::size_t>(op_), 0);
      for (I o = 0; o < op_; ++o)
        idx_[static_cast<std::size_t>(o)] =
            static_cast<std::int32_t>(std::min(o, o_ - 1) / m_ - (o / L * L) / m_);
    }
    wr_.assign(static_cast<std::size_t>(taps * op_), 0.0f);
  }

  I c() const { return c_; }
  I m() const { return m_; }
  I o() const { return o_; }
  I op() const { return op_; }
  I vectors() const { return nv_; }
  /// Valid lanes of vector v (L except maybe for the last).
  I valid(I v) const { return std::min(LanesI(), o_ - v * LanesI()); }

  /// wr[tap][o] = wei[o][kh][kw] (flip = false) for every tap of a kh x kw kernel.
  void Repack(const ConvParams& p, const float* wei) {
    const I kh = p.k[1], kw = p.k[2];
    // Tap-major with the channels innermost: the stores run along wr, as strided stores
    // (one tap after another of a channel) collided with the loads through 4 KiB aliasing
    // and took longer than a 14x14 image's convolution.
    for (I a = 0; a < kh; ++a)
      for (I b = 0; b < kw; ++b) {
        float* row = wr_.data() + (a * kw + b) * op_;
        const float* w = wei + a * p.wei_s[3] + b * p.wei_s[4];
        for (I o = 0; o < o_; ++o) row[o] = w[o * p.wei_s[0]];
      }
  }
  const float* weights(I tap) const { return wr_.data() + tap * op_; }

  /// Output-channel vector v read from a pixel of O channels (dst-side tensors).
  HWY_INLINE V Direct(const float* px, I v) const {
    const I o0 = v * LanesI();
    return LoadFirst(px + o0, o_ - o0);
  }

  /// Output-channel vector v of src lanes: lane o holds src channel o / M of pixel px.
  template <bool kMult>
  HWY_INLINE V Src(const float* px, I v) const {
    if constexpr (!kMult) {
      const I o0 = v * LanesI();
      return LoadFirst(px + o0, o_ - o0);
    } else {
      const D d;
      const I c0 = v * LanesI() / m_;
      const V raw = LoadFirst(px + c0, std::min(LanesI(), c_ - c0));
      return hn::TableLookupLanes(raw, hn::SetTableIndices(d, idx_.data() + v * LanesI()));
    }
  }

 private:
  I c_, m_, o_, op_ = 0, nv_ = 0;
  std::vector<std::int32_t> idx_;  // per lane of every vector: src channel - first channel loaded
  std::vector<float> wr_;
};

/// The `valid` channels at o0 of `rows` rows of `cols` pixels (rows row_s apart, pixels px
/// apart) as dense pixels of L floats, zero in the lanes past `valid`: row r's pixels start
/// `pad` pixels into out's row r of cols + 2*pad pixels, whose pad pixels are left as they
/// are.
template <bool kTail>
void GatherRows(const float* in, I rows, I cols, I row_s, I px, I o0, I valid, I pad, float* out) {
  const D d;
  const I L = LanesI(), out_row = (cols + 2 * pad) * L;
  for (I r = 0; r < rows; ++r) {
    const float* src = in + r * row_s + o0;
    float* dst = out + r * out_row + pad * L;
    for (I c = 0; c < cols; ++c) hn::Store(LoadPx<kTail>(src + c * px, valid), d, dst + c * L);
  }
}

/// One image's geometry in pixels: rows and pixels at the tensors' own strides (channels
/// contiguous), 1-D problems having ih = oh = kh = 1.
struct Geo {
  I ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
  I src_row, src_px, dst_row, dst_px;
};

inline Geo GeoOf(const ConvParams& p) {
  return {p.in[1],     p.in[2],     p.out[1],      p.out[2],      p.k[1],   p.k[2],
          p.stride[1], p.stride[2], p.dilation[1], p.dilation[2], p.pad[1], p.pad[2],
          p.src_s[3],  p.src_s[4],  p.dst_s[3],    p.dst_s[4]};
}

/// One pass of the 3x3 and wide strategies as a forward convolution: `in` is read (src, or
/// diff_dst for backward-data, which runs the kernel turned half a turn), `out` written;
/// pads may be negative (backward-data of a padding above kw - 1).
struct PassGeo {
  I in_h, in_w, out_h, out_w, sh, ph, pw;
  I in_row, in_px, out_row, out_px;
  I dh = 1;  // kernel row a reads input row oh * sh - ph + a * dh (the 3x3 strategy)
};

/// Output columns [lo, hi) whose every tap kw in [k0, k1) reads inside the row: the stretch
/// that needs no bounds checks (empty when lo >= hi).
inline void InteriorColumns(const Geo& g, I k0, I k1, I& lo, I& hi) {
  lo = std::max<I>(0, CeilDiv(g.pw - k0 * g.dw, g.sw));
  hi = std::min<I>(g.ow, FloorDiv(g.iw - 1 + g.pw - (k1 - 1) * g.dw, g.sw) + 1);
  if (hi < lo) hi = lo;
}

/// How many channel vectors to walk together so that the src rows one kernel window spans
/// stay in the L2 cache (about 256 KiB of them) while the window slides along the image.
inline I VectorsPerChunk(const Geo& g, I vectors) {
  const I bytes_per_vector = std::max<I>(1, g.kh * g.iw * LanesI() * static_cast<I>(sizeof(float)));
  return std::clamp<I>((I{256} << 10) / bytes_per_vector, 1, vectors);
}

/// The bias padded with zeros to whole vectors (empty when there is none), so that every
/// vector's bias is one unmasked load.
inline std::vector<float> PaddedBias(const Channels& ch, const float* bias) {
  std::vector<float> padded;
  if (bias) {
    padded.assign(static_cast<std::size_t>(ch.op()), 0.0f);
    std::copy(bias, bias + ch.o(), padded.begin());
  }
  return padded;
}

/// total[i] += sums[i] for i < n (a multiple of L), each float widened to double: one
/// image's sums going into the totals. Written out: GCC vectorized the plain loop four
/// doubles at a time on AVX-512, where 7x7x960's backward-weights (batch 8) spent 10% of its
/// time in it; this way it takes 2-4% less time in all (Xeon, 1 and 2 threads).
HWY_INLINE void AddToTotals(const float* sums, double* total, I n) {
#if HWY_TARGET == HWY_SCALAR
  for (I i = 0; i < n; ++i) total[i] += static_cast<double>(sums[i]);
#else
  const D d;
  const hn::Half<D> dh;
  const hn::Rebind<double, hn::Half<D>> dd;
  const I half = static_cast<I>(hn::Lanes(dd));
  for (I i = 0; i < n; i += LanesI()) {
    const V s = hn::LoadU(d, sums + i);
    double* t = total + i;
    hn::StoreU(hn::Add(hn::LoadU(dd, t), hn::PromoteTo(dd, hn::LowerHalf(dh, s))), dd, t);
    hn::StoreU(hn::Add(hn::LoadU(dd, t + half), hn::PromoteTo(dd, hn::UpperHalf(dh, s))), dd,
               t + half);
  }
#endif
}

/// diff_wei[o][0][kh][kw] for o < o_count from double totals total[tap][op] (taps kh*KW + kw).
inline void StoreTotals(const ConvParams& p, I taps, I op, I o_count, const double* total,
                        float* diff_wei) {
  for (I o = 0; o < o_count; ++o)
    for (I t = 0; t < taps; ++t)
      diff_wei[o * p.wei_s[0] + t] = static_cast<float>(total[t * op + o]);
}

/// The backward-weights reduction every channels-last strategy shares: image(x, dy, acc) adds
/// one image's products into acc[tap][o] (taps kh*KW + kw, rows of op floats); the images'
/// sums go into doubles in image order, so the result does not depend on how the caller cut
/// the channels into calls, and diff_wei[o][0][kh][kw] is written once at the end.
template <typename ImageFn>
void ReduceImages(const ConvParams& p, const Channels& ch, const float* src, const float* diff_dst,
                  float* diff_wei, ImageFn&& image) {
  const I taps = p.k[1] * p.k[2];
  const std::size_t size = static_cast<std::size_t>(taps * ch.op());
  std::vector<float> acc(size);
  std::vector<double> total(size);
  for (I n = 0; n < p.mb; ++n) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    image(src + n * p.src_s[0], diff_dst + n * p.dst_s[0], acc.data());
    AddToTotals(acc.data(), total.data(), static_cast<I>(size));
  }
  StoreTotals(p, taps, ch.op(), ch.o(), total.data(), diff_wei);
}

}  // namespace dwnhwc
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#endif  // include guard
