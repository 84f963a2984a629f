// The sliding-row engine of the NCHW depthwise kernels: one plane, N output vectors in registers.
//
// Memory walked for one output row oy (rows contiguous, W innermost):
//   x  [iy][ix]  iy = oy*sh - ph + kh*dh,  ix = ox*sw - pw + kw*dw   (only kh with iy inside)
//   w  [kh][kw]  via w_row / w_col steps (negative for a flipped kernel)
//   y  [oy][ox]  ox in blocks of N vectors, then single vectors; written once
// Why it is shaped this way: a depthwise plane has no reduction over channels, so the only
// reuse is inside the plane. Keeping N output vectors in registers across all kh x kw taps
// lets one broadcast weight feed N multiply-adds, and the kh input rows of an output row
// (a few KB) stay in L1 while the next output row reuses all but one of them, so src is read
// from memory about once and dst written once. Blocks whose taps all fall inside the row
// run without any test; edge blocks (the padding) clip each load with a masked load, so
// nothing is padded or copied. Stride 2 loads two vectors and splits even/odd lanes; with
// dilation 1 the odd lanes serve the next tap, so a tap pair costs two loads.
#if defined(CONVKIT_DWCONV_NCHW_ROWS_INL_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVKIT_DWCONV_NCHW_ROWS_INL_
#undef CONVKIT_DWCONV_NCHW_ROWS_INL_
#else
#define CONVKIT_DWCONV_NCHW_ROWS_INL_
#endif

#include "kernels/dwconv/dwconv_nchw_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace dwnchw {

/// Runs one Plane. KW > 0 fixes the kernel width (0: g.kw at run time); SW is the w stride
/// (1 or 2); DIL1 promises dw == 1; N output vectors are kept in registers per block.
template <int KW, int SW, bool DIL1, int N>
class Rows {
  static_assert(SW == 1 || SW == 2, "Rows takes w stride 1 or 2; ScalarPlane the rest");

 public:
  Rows(const Plane& g, const float* x, const float* w, float bias, bool accumulate, float* y)
      : g_(g), x_(x), w_(w), bias_(bias), accumulate_(accumulate), y_(y) {}

  void Run() {
    const D d;
    const I L = LanesI(d);
    // Block [ox0, ox0 + n) reads input columns ox0*SW - pw .. (ox0 + n)*SW - 1 - pw + span:
    // it is interior when ox0 >= first and (ox0 + n)*SW <= limit.
    first_ = CeilDiv(g_.pw, SW);
    limit_ = g_.iw + g_.pw - (Kw() - 1) * Dw();
    for (I oy = 0; oy < g_.oh; ++oy) {
      const I top = oy * g_.sh - g_.ph;  // input row of kh = 0
      kh_lo_ = std::max<I>(0, CeilDiv(-top, g_.dh));
      kh_hi_ = std::min<I>(g_.kh, FloorDiv(g_.ih - 1 - top, g_.dh) + 1);
      top_ = top;
      float* y = y_ + oy * g_.y_row;
      I ox0 = 0;
      // Single vectors across the left padding, so that the wide blocks run interior.
      // Peel only when wide blocks then fit inside the row; small rows are one edge block.
      const bool peel = (CeilDiv(first_, L) + N) * L <= std::min(limit_, g_.ow);
      for (; peel && ox0 < first_; ox0 += L) Block<1>(ox0, y);
      for (; ox0 + N * L <= g_.ow; ox0 += N * L) Block<N>(ox0, y);
      for (; ox0 < g_.ow; ox0 += L) Block<1>(ox0, y);
    }
  }

 private:
  // Input row of kernel row kh, formed only for the kh in [kh_lo_, kh_hi_) that lie inside
  // the image: a pointer to row top_ itself could lie far outside (huge padding).
  const float* Row(I kh) const { return x_ + (top_ + kh * g_.dh) * g_.x_row; }
  I Kw() const {
    if constexpr (KW > 0) return KW;
    return g_.kw;
  }
  I Dw() const {
    if constexpr (DIL1) return 1;
    return g_.dw;
  }

  template <int NB>
  HWY_INLINE void Block(I ox0, float* y) {
    const D d;
    const I L = LanesI(d);
    V acc[NB];
    for (int j = 0; j < NB; ++j)
      acc[j] = accumulate_ ? LoadFirst(d, y + ox0 + j * L, g_.ow - ox0 - j * L) : hn::Set(d, bias_);
    const bool interior = ox0 >= first_ && (ox0 + NB * L) * SW <= limit_;
    if (interior) {
      for (I kh = kh_lo_; kh < kh_hi_; ++kh)
        Interior<NB>(acc, Row(kh) + ox0 * SW - g_.pw, w_ + kh * g_.w_row);
    } else if constexpr (KW > 0 && SW == 1 && NB == 1 && kHardwareMask) {
      EdgeFixed(acc[0], ox0);
    } else {
      for (I kh = kh_lo_; kh < kh_hi_; ++kh)
        Edge<NB>(acc, Row(kh), ox0, w_ + kh * g_.w_row);
    }
    for (int j = 0; j < NB; ++j) StoreFirst(d, acc[j], y + ox0 + j * L, g_.ow - ox0 - j * L);
  }

  // All taps read inside the row: xb is the input of tap kw = 0 for lane 0 of the block.
  template <int NB>
  HWY_INLINE void Interior(V (&acc)[NB], const float* xb, const float* wr) const {
    const D d;
    const I L = LanesI(d), kw_n = Kw(), dw = Dw(), wc = g_.w_col;
    if constexpr (SW == 1) {
      for (I kw = 0; kw < kw_n; ++kw) {
        const V wv = hn::Set(d, wr[kw * wc]);
        for (int j = 0; j < NB; ++j) acc[j] = hn::MulAdd(hn::LoadU(d, xb + j * L + kw * dw), wv, acc[j]);
      }
    } else if constexpr (DIL1) {
      I kw = 0;
      for (; kw + 1 < kw_n; kw += 2) {
        const V w0 = hn::Set(d, wr[kw * wc]), w1 = hn::Set(d, wr[(kw + 1) * wc]);
        for (int j = 0; j < NB; ++j) {
          const V lo = hn::LoadU(d, xb + 2 * j * L + kw), hi = hn::LoadU(d, xb + 2 * j * L + kw + L);
          acc[j] = hn::MulAdd(Evens(d, hi, lo), w0, acc[j]);
          acc[j] = hn::MulAdd(Odds(d, hi, lo), w1, acc[j]);
        }
      }
      if (kw < kw_n) {
        const V w0 = hn::Set(d, wr[kw * wc]);
        for (int j = 0; j < NB; ++j) {
          const V lo = hn::LoadU(d, xb + 2 * j * L + kw), hi = hn::LoadU(d, xb + 2 * j * L + kw + L);
          acc[j] = hn::MulAdd(Evens(d, hi, lo), w0, acc[j]);
        }
      }
    } else {
      for (I kw = 0; kw < kw_n; ++kw) {
        const V wv = hn::Set(d, wr[kw * wc]);
        for (int j = 0; j < NB; ++j) {
          const float* p = xb + 2 * j * L + kw * dw;
          acc[j] = hn::MulAdd(Evens(d, hn::LoadU(d, p + L), hn::LoadU(d, p)), wv, acc[j]);
        }
      }
    }
  }

  // One edge vector of a fixed-width kernel at stride 1: which lanes each tap may read
  // depends on kw only, so the masks are made once and serve every kernel row.
  HWY_INLINE void EdgeFixed(V& acc, I ox0) const {
    const D d;
    const I L = LanesI(d), dw = Dw(), iw = g_.iw;
    using M = decltype(hn::FirstN(d, 0));
    M mask[KW];
    I idx[KW];
    bool any[KW];
    for (int kw = 0; kw < KW; ++kw) {
      idx[kw] = ox0 - g_.pw + kw * dw;
      const I lo = Clamp(-idx[kw], 0, L), hi = Clamp(iw - idx[kw], 0, L);
      any[kw] = lo < hi;
      mask[kw] = hn::AndNot(hn::FirstN(d, static_cast<size_t>(lo)), hn::FirstN(d, static_cast<size_t>(hi)));
    }
    for (I kh = kh_lo_; kh < kh_hi_; ++kh) {
      const float* xr = Row(kh);
      const float* wr = w_ + kh * g_.w_row;
      for (int kw = 0; kw < KW; ++kw)
        if (any[kw]) acc = hn::MulAdd(hn::MaskedLoad(mask[kw], d, xr + idx[kw]), hn::Set(d, wr[kw * g_.w_col]), acc);
    }
  }

  // Some tap reads outside the row: every load is clipped to [0, iw).
  template <int NB>
  HWY_INLINE void Edge(V (&acc)[NB], const float* xr, I ox0, const float* wr) const {
    const D d;
    const I L = LanesI(d), kw_n = Kw(), dw = Dw(), iw = g_.iw;
    for (I kw = 0; kw < kw_n; ++kw) {
      const V wv = hn::Set(d, wr[kw * g_.w_col]);
      for (int j = 0; j < NB; ++j) {
        const I idx = (ox0 + j * L) * SW - g_.pw + kw * dw;
        if constexpr (SW == 1) {
          if (idx >= iw || idx + L <= 0) continue;
          acc[j] = hn::MulAdd(LoadClipped(d, xr, idx, iw), wv, acc[j]);
        } else {
          if (idx >= iw || idx + 2 * L <= 0) continue;
          const V lo = LoadClipped(d, xr, idx, iw), hi = LoadClipped(d, xr, idx + L, iw);
          acc[j] = hn::MulAdd(Evens(d, hi, lo), wv, acc[j]);
        }
      }
    }
  }

  const Plane& g_;
  const float* x_;
  const float* w_;
  float bias_;
  bool accumulate_;
  float* y_;
  I first_ = 0, limit_ = 0, kh_lo_ = 0, kh_hi_ = 0;
  I top_ = 0;  // input row of kh = 0 (may lie far outside the image)
};

/// Forward of every (image, channel, multiplier) plane of a depthwise problem with Rows.
template <int KW, int SW, bool DIL1, int N>
void FwdAll(const ConvParams& p, const float* src, const float* wei, const float* bias, float* dst) {
  const Plane g = FwdPlane(p);
  for (I n = 0; n < p.mb; ++n)
    for (I c = 0; c < p.g; ++c) {
      const float* x = src + n * p.src_s[0] + c * p.src_s[1];
      for (I m = 0; m < p.ocg; ++m) {  // the planes of one input stay in cache across m
        const I o = c * p.ocg + m;
        float* y = dst + n * p.dst_s[0] + o * p.dst_s[1];
        const float b = bias ? bias[o] : 0.0f;
        if constexpr (SW == 0)
          ScalarPlane(g, x, wei + o * p.wei_s[0], b, false, y);
        else
          Rows<KW, SW, DIL1, N>(g, x, wei + o * p.wei_s[0], b, false, y).Run();
      }
    }
}

/// Backward-data at stride 1: diff_src[c] = sum over m of the flipped-kernel forward of
/// diff_dst[c*ocg + m]; the first multiplier writes, the others add.
template <int KW, bool DIL1, int N>
void BwdDataFlipAll(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  const Plane g = FlippedPlane(p);
  const I last = (p.k[1] - 1) * p.wei_s[3] + (p.k[2] - 1) * p.wei_s[4];  // w(kh-1, kw-1)
  for (I n = 0; n < p.mb; ++n)
    for (I c = 0; c < p.g; ++c) {
      float* y = diff_src + n * p.src_s[0] + c * p.src_s[1];
      for (I m = 0; m < p.ocg; ++m) {
        const I o = c * p.ocg + m;
        const float* x = diff_dst + n * p.dst_s[0] + o * p.dst_s[1];
        Rows<KW, 1, DIL1, N>(g, x, wei + o * p.wei_s[0] + last, 0.0f, m > 0, y).Run();
      }
    }
}

}  // namespace dwnchw
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#endif  // include guard
