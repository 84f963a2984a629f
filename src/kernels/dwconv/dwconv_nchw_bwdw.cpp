// Depthwise backward-weights for NCHW rows (W innermost), 1-D and 2-D, float32: Highway code
// compiled for AVX2, AVX3 and a portable fallback, chosen at run time.
//
// Memory walked, per output channel o = c*ocg + m and image n (rows contiguous in w):
//   src       [n][c][ih][iw]   ih = oh*sh - ph + kh*dh, iw = ow*sw - pw + kw*dw
//   diff_dst  [n][o][oh][ow]
//   diff_wei  [o][0][kh][kw]   dense
// The caller guarantees dwconv_nchw_bwdw_layout_ok(p); everything outside the src plane is
// zero padding, which is never read.
//
// Strategy: a block of R kernel rows x KB kernel columns keeps R*KB vector accumulators.
// Stride 1 vectorizes over src columns c: one src vector per kernel row is loaded once and
// multiplied with KB shifted diff_dst vectors (ow = c + pw - kw*dw), so R + KB loads feed
// R*KB FMAs. Stride 2 vectorizes over output columns: one diff_dst vector is shared by every
// tap, the src lanes ow*2 + const come from two loads and an even/odd split. Columns where
// some tap of the block would read outside the row are done per tap, with masked vectors
// placed inside that tap's own range (scalar code where it is shorter than a vector); the
// last vector of a row is shifted back to end at the row end and its lanes already counted
// are masked off, so nothing is read outside the plane and nothing is padded.
// Other w strides run the same blocks in scalar code. Kernels of width 7 and more go to
// dwconv_nchw_bwdw_large.cpp, whose kernel-columns-in-lanes scheme measured faster there.
// Sums: float vectors over one image's plane, then one lane reduction per image added into
// doubles over the batch, always in the same order.
#include "kernels/dwconv/dwconv_nchw_bwdw.hpp"

#include <algorithm>
#include <cstdint>

// Keep the compiled targets few: AVX2, AVX3 and the baseline (scalar without -m flags).
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS ((HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL) & ~(HWY_BASELINE_TARGETS))
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nchw_bwdw.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using I = std::int64_t;
// 8 lanes on AVX-512 too: rows of 56 or 28 lose less to the partial vectors at their ends,
// and on the Zen 4 we measured 512-bit FMAs bring no throughput; the 32 registers stay.
using D = hn::CappedTag<float, 8>;
using V = hn::Vec<D>;

// AVX-512 has 32 vector registers, the others 16: the block sizes below follow.
constexpr bool kManyRegs = HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL;
// The one-lane scalar target has no even/odd split: stride 2 runs the scalar code there.
#if HWY_TARGET == HWY_SCALAR
constexpr int kS2 = 0;
#else
constexpr int kS2 = 2;
#endif

I floor_div(I a, I b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
I ceil_div(I a, I b) { return -floor_div(-a, b); }

// The geometry of one (image, channel) plane pair.
struct Geo {
  I ih, iw, oh, ow, sh, sw, dh, dw, ph, pw, src_row, dst_row;
};

// Accumulates the taps (kh0 + r, kw0 + k), r < rows <= R, k < KB, of one image into tot.
// S = 1 or 2 is the w stride the vector code assumes; S = 0 runs scalar code for any stride.
template <int R, int KB, int S>
class Block {
 public:
  Block(const Geo& g, I kh0, I rows, I kw0) : g_(g), kh0_(kh0), rows_(rows), kw0_(kw0) {}

  void image(const float* x, const float* dy, double (&tot)[R][KB]) {
    const D d;
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < KB; ++k) {
        acc_[r][k] = hn::Zero(d);
        sacc_[r][k] = 0.0f;
      }
    for (I oh = 0; oh < g_.oh; ++oh) {
      bool any = false;
      for (int r = 0; r < R; ++r) {
        const I ih = oh * g_.sh - g_.ph + (kh0_ + r) * g_.dh;
        const bool ok = r < rows_ && ih >= 0 && ih < g_.ih;
        xrow_[r] = ok ? x + ih * g_.src_row : nullptr;
        any = any || ok;
      }
      if (any) row(dy + oh * g_.dst_row);
    }
    for (int r = 0; r < R; ++r)
      for (int k = 0; k < KB; ++k)
        tot[r][k] += static_cast<double>(hn::GetLane(hn::SumOfLanes(d, acc_[r][k]))) +
                     static_cast<double>(sacc_[r][k]);
  }

 private:
  // Loop-variable range [a, b) in which tap kw reads inside the row: src columns for S = 1,
  // output columns otherwise. For S = 2, `vec` narrows b so that the two loads of a vector
  // (one element past the last lane) stay inside the row too.
  I lo(I kw) const {
    if constexpr (S == 1) return std::max<I>(0, kw * g_.dw - g_.pw);
    return std::max<I>(0, ceil_div(g_.pw - kw * g_.dw, g_.sw));
  }
  I hi(I kw, bool vec) const {
    if constexpr (S == 1) return std::min(g_.iw, g_.ow + kw * g_.dw - g_.pw);
    return std::min(g_.ow, floor_div(g_.iw - (vec ? 2 : 1) + g_.pw - kw * g_.dw, g_.sw) + 1);
  }

  void row(const float* dy) {
    const D d;
    const I L = static_cast<I>(hn::Lanes(d));
    I vlo = 0, vhi = 0;  // the range the vector code covers, empty if none
    if constexpr (S != 0) {
      // Both bounds move with kw in the same direction, so the block's common range is set by
      // its first and last tap.
      const I last = kw0_ + KB - 1;
      vlo = S == 1 ? lo(last) : lo(kw0_);
      vhi = S == 1 ? hi(kw0_, true) : hi(last, true);
      if (vhi - vlo >= L) {
        // Accumulators and row pointers in locals, so that they live in registers.
        V acc[R][KB];
        const float* xr[R];
        for (int r = 0; r < R; ++r) {
          xr[r] = xrow_[r];
          for (int k = 0; k < KB; ++k) acc[r][k] = acc_[r][k];
        }
        I c = vlo;
        for (; c + L <= vhi; c += L) body<false>(xr, dy, c, hn::FirstN(d, 0), acc);
        if (c < vhi) {  // shifted back to end at vhi; lanes below c were counted already
          const I start = vhi - L;
          const auto fresh = hn::Iota(d, 0.0f) >= hn::Set(d, static_cast<float>(c - start));
          body<true>(xr, dy, start, fresh, acc);
        }
        for (int r = 0; r < R; ++r)
          for (int k = 0; k < KB; ++k) acc_[r][k] = acc[r][k];
      } else {
        vlo = vhi = 0;
      }
    }
    for (int k = 0; k < KB; ++k) {
      const I kw = kw0_ + k;
      const I a = lo(kw), b = hi(kw, false);
      if (vlo < vhi) {
        fringe(dy, k, a, std::min(vlo, b));
        fringe(dy, k, std::max(vhi, a), b);
      } else {
        fringe(dy, k, a, b);
      }
    }
  }

  // Columns [f0, f1) of tap column k that the block's common range left out: masked vectors
  // placed inside the tap's own safe range where it is at least a vector long, scalar code
  // for the rest. Wide kernels on narrow rows leave a sizable part here.
  void fringe(const float* dy, int k, I f0, I f1) {
    if (f0 >= f1) return;
    const D d;
    const I L = static_cast<I>(hn::Lanes(d));
    const I kw = kw0_ + k, va = lo(kw), vb = hi(kw, true);
    const I s0 = std::max(f0, va), s1 = std::min(f1, vb);
    // A column or three (3x3 at a row end) are cheaper scalar than as a masked vector.
    if (S == 0 || vb - va < L || s1 - s0 < 4) return edge(dy, k, f0, f1);
    edge(dy, k, f0, s0);
    const V iota = hn::Iota(d, 0.0f);
    for (I c = s0; c < s1; c += L) {
      const I e = std::min(c + L, s1), start = std::min(c, vb - L);
      const auto m = hn::And(iota >= hn::Set(d, static_cast<float>(c - start)),
                             iota < hn::Set(d, static_cast<float>(e - start)));
      tap(dy, k, start, m);
    }
    edge(dy, k, s1, f1);
  }

  // The lanes m of the vector at `start` (loop-variable space) for tap column k.
  void tap(const float* dy, int k, I start, hn::Mask<D> m) {
    const D d;
    [[maybe_unused]] const I L = static_cast<I>(hn::Lanes(d));
    const I kw = kw0_ + k;
    if constexpr (S == 1) {
      const V dv = hn::LoadU(d, dy + start + g_.pw - kw * g_.dw);
      for (int r = 0; r < R; ++r)
        if (xrow_[r])
          acc_[r][k] = hn::Add(acc_[r][k], hn::IfThenElseZero(m, hn::Mul(hn::LoadU(d, xrow_[r] + start), dv)));
    } else if constexpr (S == 2) {
#if HWY_TARGET != HWY_SCALAR
      const V dv = hn::LoadU(d, dy + start);
      for (int r = 0; r < R; ++r) {
        if (!xrow_[r]) continue;
        const float* q = xrow_[r] + start * 2 - g_.pw + kw * g_.dw;
        const V xv = hn::ConcatEven(d, hn::LoadU(d, q + L), hn::LoadU(d, q));
        acc_[r][k] = hn::Add(acc_[r][k], hn::IfThenElseZero(m, hn::Mul(xv, dv)));
      }
#endif
    }
  }

  template <bool kMasked>
  HWY_INLINE void body(const float* const (&xrow)[R], const float* dy, I c, hn::Mask<D> fresh,
                       V (&acc)[R][KB]) {
    const D d;
    [[maybe_unused]] const I L = static_cast<I>(hn::Lanes(d));
    auto fma = [&](V a, V b, V& sum) {
      if constexpr (kMasked)
        sum = hn::Add(sum, hn::IfThenElseZero(fresh, hn::Mul(a, b)));
      else
        sum = hn::MulAdd(a, b, sum);
    };
    if constexpr (S == 1) {
      V xv[R];
      for (int r = 0; r < R; ++r) xv[r] = xrow[r] ? hn::LoadU(d, xrow[r] + c) : hn::Zero(d);
      for (int k = 0; k < KB; ++k) {
        const V dv = hn::LoadU(d, dy + c + g_.pw - (kw0_ + k) * g_.dw);
        for (int r = 0; r < R; ++r)
          if (xrow[r]) fma(xv[r], dv, acc[r][k]);
      }
    } else {
#if HWY_TARGET != HWY_SCALAR
      const V dv = hn::LoadU(d, dy + c);
      for (int r = 0; r < R; ++r) {
        if (!xrow[r]) continue;
        const float* base = xrow[r] + c * 2 - g_.pw + kw0_ * g_.dw;
        if (KB == 1 || g_.dw != 1) {
          for (int k = 0; k < KB; ++k) {
            const float* q = base + k * g_.dw;
            fma(hn::ConcatEven(d, hn::LoadU(d, q + L), hn::LoadU(d, q)), dv, acc[r][k]);
          }
        } else {  // neighbouring taps are the even and odd lanes of the same two loads
          for (int k = 0; k < KB; k += 2) {
            const V x0 = hn::LoadU(d, base + k), x1 = hn::LoadU(d, base + k + L);
            fma(hn::ConcatEven(d, x1, x0), dv, acc[r][k]);
            if (k + 1 < KB) fma(hn::ConcatOdd(d, x1, x0), dv, acc[r][k + 1]);
          }
        }
      }
#endif
    }
  }

  // Scalar columns [a, b) of the loop variable for tap column k.
  void edge(const float* dy, int k, I a, I b) {
    if (a >= b) return;
    const I kw = kw0_ + k;
    for (int r = 0; r < R; ++r) {
      const float* xr = xrow_[r];
      if (!xr) continue;
      float s = sacc_[r][k];
      if constexpr (S == 1) {
        const I shift = g_.pw - kw * g_.dw;
        for (I c = a; c < b; ++c) s += xr[c] * dy[c + shift];
      } else {
        const I off = kw * g_.dw - g_.pw;
        for (I ow = a; ow < b; ++ow) s += dy[ow] * xr[ow * g_.sw + off];
      }
      sacc_[r][k] = s;
    }
  }

  const Geo& g_;
  const I kh0_, rows_, kw0_;
  const float* xrow_[R] = {};
  V acc_[R][KB];
  float sacc_[R][KB];
};

// Every output channel, kernel-row block by kernel-column block, images in order.
template <int R, int KB, int S>
void run(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
  const Geo g{p.in[1],     p.in[2],       p.out[1],      p.out[2],   p.stride[1],
              p.stride[2], p.dilation[1], p.dilation[2], p.pad[1],   p.pad[2],
              p.src_s[3],  p.dst_s[3]};
  const I kh = p.k[1], kw = p.k[2];
  for (I o = 0; o < p.g * p.ocg; ++o) {
    const I c = o / p.ocg;
    float* w = diff_wei + o * p.wei_s[0];
    // Balanced row blocks: 7 rows in blocks of at most 3 are 3 + 2 + 2, not 3 + 3 + 1.
    const I per = (kh + (kh + R - 1) / R - 1) / ((kh + R - 1) / R);
    for (I kh0 = 0; kh0 < kh; kh0 += per) {
      const I rows = std::min<I>(per, kh - kh0);
      for (I kw0 = 0; kw0 < kw; kw0 += KB) {
        double tot[R][KB] = {};
        Block<R, KB, S> block(g, kh0, rows, kw0);
        for (I n = 0; n < p.mb; ++n)
          block.image(src + n * p.src_s[0] + c * p.src_s[1],
                      diff_dst + n * p.dst_s[0] + o * p.dst_s[1], tot);
        for (I r = 0; r < rows; ++r)
          for (int k = 0; k < KB; ++k)
            w[(kh0 + r) * kw + kw0 + k] = static_cast<float>(tot[r][k]);
      }
    }
  }
}

// Specialized kernel width K at w stride S (any height, h stride and dilations; made for
// K x K): all K taps of as many kernel rows per block as the registers hold.
template <int K, int S>
void run_kxk(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
  constexpr int kAcc = kManyRegs ? 26 : 10;  // accumulators that fit beside the operands
  constexpr int R = std::min(K, std::max(1, kAcc / K));
  run<R, K, S == 2 ? kS2 : S>(p, src, diff_dst, diff_wei);
}

// Any kernel width and dilation, one tap column at a time: each diff_dst vector feeds R FMAs.
template <int R>
void run_per_tap(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
  if (p.stride[2] == 1)
    run<R, 1, 1>(p, src, diff_dst, diff_wei);
  else if (p.stride[2] == 2)
    run<R, 1, kS2>(p, src, diff_dst, diff_wei);
  else
    run<R, 1, 0>(p, src, diff_dst, diff_wei);
}

}  // namespace

// kind: K*10 + S for the specialized kernels, 0 for the generic path.
void BwdwRun(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei,
             int kind) {
  switch (kind) {
    case 31: return run_kxk<3, 1>(p, src, diff_dst, diff_wei);
    case 32: return run_kxk<3, 2>(p, src, diff_dst, diff_wei);
    case 51: return run_kxk<5, 1>(p, src, diff_dst, diff_wei);
    case 52: return run_kxk<5, 2>(p, src, diff_dst, diff_wei);
    default: return run_per_tap<4>(p, src, diff_dst, diff_wei);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(BwdwRun);

bool dwconv_nchw_bwdw_layout_ok(const ConvParams& p) {
  // diff_wei is written densely as [o][kh][kw]. Only the strides of extents above 1 are
  // checked: src/ops/ leaves the strides of the unused d (and, in 1-D, h) slots at 0.
  const auto& k = p.k;
  return p.icg == 1 && p.ocg >= 1 && p.k[0] == 1 && p.in[0] == 1 && p.out[0] == 1 &&
         p.pad[0] == 0 && p.src_s[4] == 1 && p.dst_s[4] == 1 && p.wei_s[4] == 1 &&
         (k[1] == 1 || p.wei_s[3] == k[2]) && p.wei_s[0] == k[1] * k[2] &&
         p.stride[1] >= 1 && p.stride[2] >= 1 && p.dilation[1] >= 1 && p.dilation[2] >= 1;
}

template <int K, int S>
bool dwconv_nchw_bwdw_kxk_supports(const ConvParams& p) {
  return dwconv_nchw_bwdw_layout_ok(p) && p.k[2] == K && p.stride[2] == S;
}

bool dwconv_nchw_bwdw_generic_supports(const ConvParams& p) { return dwconv_nchw_bwdw_layout_ok(p); }

template <int K, int S>
void dwconv_nchw_bwdw_kxk_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                              float* diff_wei) {
  HWY_DYNAMIC_DISPATCH(BwdwRun)(p, src, diff_dst, diff_wei, K * 10 + S);
}

void dwconv_nchw_bwdw_generic_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                                  float* diff_wei) {
  HWY_DYNAMIC_DISPATCH(BwdwRun)(p, src, diff_dst, diff_wei, 0);
}

#define CONVKIT_KXK(K, S)                                                                      \
  template bool dwconv_nchw_bwdw_kxk_supports<K, S>(const ConvParams&);                      \
  template void dwconv_nchw_bwdw_kxk_hwy<K, S>(const ConvParams&, const float*, const float*, \
                                               float*);
CONVKIT_KXK(3, 1)
CONVKIT_KXK(3, 2)
CONVKIT_KXK(5, 1)
CONVKIT_KXK(5, 2)
#undef CONVKIT_KXK

}  // namespace convkit::kernels
#endif  // HWY_ONCE
