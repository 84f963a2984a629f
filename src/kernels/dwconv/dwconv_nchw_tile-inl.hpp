// The large-kernel engine of the NCHW depthwise kernels: R output rows x N vectors in registers.
//
// Memory walked for one tile of output rows oy0 .. oy0+R-1 (stride 1, dilation 1):
//   x  [iy][ix]    each input row iy the tile needs, once: ix = ox - pw + kw
//   w  [kh][kw]    kh = iy - (oy0 + r) + ph for tile row r (a zero row where out of range)
//   y  [oy][ox]    R rows x N vectors of accumulators, written once
// Why: with a large kernel (9 .. 31 and beyond) the work is kh*kw multiply-adds per output
// and the bottleneck is feeding them. One input vector is loaded once per (iy, kw) and used
// by the R output rows that read it (with R different weights), and one broadcast weight by
// the N vectors of a row, so R*N multiply-adds need about N loads plus R broadcasts. Input
// rows that every tile row reads (all but the first and last R-1) run without tests; at the
// tile's top and bottom, rows the input row does not reach are skipped, not multiplied by
// zero, so an Inf or NaN input reaches exactly the outputs that see it. Edges clip each load with a masked load, once per
// (iy, kw, vector) for all R rows, so small planes (28x28 with a 31x31 kernel, all edge)
// cost little more than interior ones.
#if defined(CONVKIT_DWCONV_NCHW_TILE_INL_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVKIT_DWCONV_NCHW_TILE_INL_
#undef CONVKIT_DWCONV_NCHW_TILE_INL_
#else
#define CONVKIT_DWCONV_NCHW_TILE_INL_
#endif

#include "kernels/dwconv/dwconv_nchw_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace dwnchw {

/// Widest kernel the tile engine takes: its zero weight row is a fixed array.
constexpr I kTileMaxKw = 64;

/// Runs one Plane with sh = sw = dh = dw = 1, kw <= kTileMaxKw and |w_col| == 1.
template <int R, int N>
class Tile {
 public:
  Tile(const Plane& g, const float* x, const float* w, float bias, bool accumulate, float* y)
      : g_(g), x_(x), w_(w), bias_(bias), accumulate_(accumulate), y_(y) {}

  void Run() {
    const D d;
    const I L = LanesI(d);
    static constexpr float kZeros[2 * kTileMaxKw] = {};
    zero_ = kZeros + kTileMaxKw;  // valid for kw * w_col in (-kTileMaxKw, kTileMaxKw)
    first_ = g_.pw;
    limit_ = g_.iw + g_.pw - (g_.kw - 1);
    for (I oy0 = 0; oy0 < g_.oh; oy0 += R) {
      rows_ = std::min<I>(R, g_.oh - oy0);
      oy0_ = oy0;
      iy_lo_ = std::max<I>(0, oy0 - g_.ph);
      iy_hi_ = std::min<I>(g_.ih, oy0 + rows_ - 1 - g_.ph + g_.kh);
      I ox0 = 0;
      // Peel only when wide blocks then fit inside the row; small rows are one edge block.
      const bool peel = (CeilDiv(first_, L) + N) * L <= std::min(limit_, g_.ow);
      for (; peel && ox0 < first_; ox0 += L) Block<1>(ox0);
      for (; ox0 + N * L <= g_.ow; ox0 += N * L) Block<N>(ox0);
      for (; ox0 < g_.ow; ox0 += L) Block<1>(ox0);
    }
  }

 private:
  template <int NB>
  HWY_INLINE void Block(I ox0) {
    const D d;
    const I L = LanesI(d);
    V acc[R][NB];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NB; ++j) {
        if (r >= rows_)
          acc[r][j] = hn::Zero(d);
        else if (accumulate_)
          acc[r][j] = LoadFirst(d, y_ + (oy0_ + r) * g_.y_row + ox0 + j * L, g_.ow - ox0 - j * L);
        else
          acc[r][j] = hn::Set(d, bias_);
      }
    const bool interior = ox0 >= first_ && ox0 + NB * L <= limit_;
    for (I iy = iy_lo_; iy < iy_hi_; ++iy) {
      // Tile rows that input row iy does not reach get no multiply-adds at all (a zero
      // weight times an Inf or NaN input would make them NaN, which PyTorch's are not);
      // rows past the plane are never stored, so they take the zero row freely.
      const float* wr[R];
      unsigned reached = 0;
      for (int r = 0; r < R; ++r) {
        const I kh = iy - (oy0_ + r) + g_.ph;
        const bool in = r < rows_ && kh >= 0 && kh < g_.kh;
        wr[r] = in ? w_ + kh * g_.w_row : zero_;
        if (in || r >= rows_) reached |= 1u << r;
      }
      const float* xr = x_ + iy * g_.x_row;
      const bool all = reached == (1u << R) - 1;
      if (interior && all)
        Taps<NB, true, false>(acc, xr, ox0, wr, reached);
      else if (all)
        Taps<NB, false, false>(acc, xr, ox0, wr, reached);
      else if (interior)
        Taps<NB, true, true>(acc, xr, ox0, wr, reached);
      else
        Taps<NB, false, true>(acc, xr, ox0, wr, reached);
    }
    for (int r = 0; r < R && r < rows_; ++r)
      for (int j = 0; j < NB; ++j)
        StoreFirst(d, acc[r][j], y_ + (oy0_ + r) * g_.y_row + ox0 + j * L, g_.ow - ox0 - j * L);
  }

  template <int NB, bool kInterior, bool kSomeRows>
  HWY_INLINE void Taps(V (&acc)[R][NB], const float* xr, I ox0, const float* const (&wr)[R],
                       unsigned reached) const {
    const D d;
    const I L = LanesI(d), wc = g_.w_col, iw = g_.iw;
    for (I kw = 0; kw < g_.kw; ++kw) {
      V wv[R];
      for (int r = 0; r < R; ++r) wv[r] = hn::Set(d, wr[r][kw * wc]);
      for (int j = 0; j < NB; ++j) {
        const I idx = ox0 + j * L - g_.pw + kw;
        V xv;
        if constexpr (kInterior) {
          xv = hn::LoadU(d, xr + idx);
        } else {
          if (idx >= iw || idx + L <= 0) continue;
          xv = LoadClipped(d, xr, idx, iw);
        }
        for (int r = 0; r < R; ++r) {
          if constexpr (kSomeRows)
            if (!((reached >> r) & 1u)) continue;
          acc[r][j] = hn::MulAdd(xv, wv[r], acc[r][j]);
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
  const float* zero_ = nullptr;
  I first_ = 0, limit_ = 0, rows_ = 0, oy0_ = 0, iy_lo_ = 0, iy_hi_ = 0;
};

/// Forward of every (image, channel, multiplier) plane with Tile.
template <int R, int N>
void TileFwdAll(const ConvParams& p, const float* src, const float* wei, const float* bias, float* dst) {
  const Plane g = FwdPlane(p);
  for (I n = 0; n < p.mb; ++n)
    for (I c = 0; c < p.g; ++c) {
      const float* x = src + n * p.src_s[0] + c * p.src_s[1];
      for (I m = 0; m < p.ocg; ++m) {
        const I o = c * p.ocg + m;
        Tile<R, N>(g, x, wei + o * p.wei_s[0], bias ? bias[o] : 0.0f, false,
                   dst + n * p.dst_s[0] + o * p.dst_s[1])
            .Run();
      }
    }
}

/// Backward-data (stride 1) with Tile on the flipped kernel; the first multiplier writes.
template <int R, int N>
void TileBwdDataAll(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  const Plane g = FlippedPlane(p);
  const I last = (p.k[1] - 1) * p.wei_s[3] + (p.k[2] - 1) * p.wei_s[4];
  for (I n = 0; n < p.mb; ++n)
    for (I c = 0; c < p.g; ++c) {
      float* y = diff_src + n * p.src_s[0] + c * p.src_s[1];
      for (I m = 0; m < p.ocg; ++m) {
        const I o = c * p.ocg + m;
        Tile<R, N>(g, diff_dst + n * p.dst_s[0] + o * p.dst_s[1], wei + o * p.wei_s[0] + last, 0.0f, m > 0, y)
            .Run();
      }
    }
}

}  // namespace dwnchw
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#endif  // include guard
