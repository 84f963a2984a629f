// The phase engine of the NCHW depthwise kernels: backward-data at any stride and dilation.
//
// Memory walked for one diff_src row iy and column phase q (ix = q + sw*t):
//   diff_dst [oy][ox]  oy = (iy + ph - kh*dh) / sh, ox = t + (q + pw - kw*dw) / sw
//                      for the taps where both divisions are exact
//   diff_src [iy][ix]  L lanes of consecutive t, stored every sw-th element
// Why: backward-data scatters each diff_dst element into kh x kw diff_src elements;
// gathering instead, a diff_src column phase q only meets the taps whose offset is
// divisible by the stride, and for those consecutive t read consecutive diff_dst columns,
// so the loads are contiguous vectors (clipped at the row ends, never padded) and only the
// store is strided. Nothing is read twice per tap and no scatter conflicts exist.
#if defined(CONVKIT_DWCONV_NCHW_PHASE_INL_) == defined(HWY_TARGET_TOGGLE)
#ifdef CONVKIT_DWCONV_NCHW_PHASE_INL_
#undef CONVKIT_DWCONV_NCHW_PHASE_INL_
#else
#define CONVKIT_DWCONV_NCHW_PHASE_INL_
#endif

#include "kernels/dwconv/dwconv_nchw_common-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace dwnchw {

/// Stores the first n lanes (0 < n <= L) of v at p, p + step, p + 2*step, ...
HWY_INLINE void StoreStrided(D d, V v, float* p, I step, I n) {
  if (step == 1) return StoreFirst(d, v, p, n);
  HWY_ALIGN float buf[kMaxLanes];
  hn::Store(v, d, buf);
  for (I l = 0; l < n; ++l) p[l * step] = buf[l];
}

/// Loads the first n lanes (0 < n <= L) from p, p + step, ..., zero elsewhere.
HWY_INLINE V LoadStrided(D d, const float* p, I step, I n) {
  if (step == 1) return LoadFirst(d, p, n);
  HWY_ALIGN float buf[kMaxLanes] = {};
  for (I l = 0; l < n; ++l) buf[l] = p[l * step];
  return hn::Load(d, buf);
}

/// diff_src plane dx (ih x iw) (=|+=) the adjoint of the forward plane g applied to diff_dst
/// plane dy (oh x ow) with weights w; g is the forward geometry, so dx rows step by g.x_row
/// and dy rows by g.y_row.
inline void PhasePlane(const Plane& g, const float* dy, const float* w, bool accumulate, float* dx) {
  const D d;
  const I L = LanesI(d);
  // The taps of one (row, phase), up to kMaxTaps at a time: a diff_dst row, the column
  // offset that lane t = 0 reads, and the weight.
  constexpr int kMaxTaps = 256;
  const float* tap_row[kMaxTaps];
  I tap_off[kMaxTaps];
  float tap_w[kMaxTaps];
  for (I iy = 0; iy < g.ih; ++iy) {
    float* yr = dx + iy * g.x_row;
    for (I q = 0; q < std::min(g.sw, g.iw); ++q) {
      const I t_n = CeilDiv(g.iw - q, g.sw);
      I kh = 0, kw = 0;  // the next tap to put in the table
      bool add = accumulate;
      do {
        int taps = 0;
        for (; kh < g.kh && taps < kMaxTaps; ++kh, kw = 0) {
          const I num = iy + g.ph - kh * g.dh;
          if (num < 0 || num % g.sh != 0 || num / g.sh >= g.oh) {
            kw = g.kw;
            continue;
          }
          for (; kw < g.kw && taps < kMaxTaps; ++kw) {
            const I num_w = q + g.pw - kw * g.dw;
            if (num_w % g.sw != 0) continue;
            tap_row[taps] = dy + (num / g.sh) * g.y_row;
            tap_off[taps] = num_w / g.sw;
            tap_w[taps] = w[kh * g.w_row + kw * g.w_col];
            ++taps;
          }
          if (kw < g.kw) break;  // the table filled up inside this kernel row
        }
        for (I t0 = 0; t0 < t_n; t0 += L) {
          const I n = std::min(L, t_n - t0);
          float* out = yr + q + g.sw * t0;
          V acc = add ? LoadStrided(d, out, g.sw, n) : hn::Zero(d);
          for (int k = 0; k < taps; ++k)
            acc = hn::MulAdd(LoadClipped(d, tap_row[k], tap_off[k] + t0, g.ow), hn::Set(d, tap_w[k]), acc);
          StoreStrided(d, acc, out, g.sw, n);
        }
        add = true;
      } while (kh < g.kh);
    }
  }
}

/// The taps of diff_src row iy, column phase q (at most kh*kw): the diff_dst row each reads,
/// the column that lane t = 0 reads, and the weight.
struct PhaseTaps {
  static constexpr int kMax = 256;
  const float* row[kMax];
  I off[kMax];
  float w[kMax];
  int n = 0;
  I off_min = 0, off_max = 0;

  void Gather(const Plane& g, const float* dy, const float* wei, I iy, I q) {
    n = 0;
    off_min = 0;
    off_max = 0;
    for (I kh = 0; kh < g.kh; ++kh) {
      const I num = iy + g.ph - kh * g.dh;
      if (num < 0 || num % g.sh != 0 || num / g.sh >= g.oh) continue;
      for (I kw = 0; kw < g.kw; ++kw) {
        const I num_w = q + g.pw - kw * g.dw;
        if (num_w % g.sw != 0) continue;
        row[n] = dy + (num / g.sh) * g.y_row;
        off[n] = num_w / g.sw;
        w[n] = wei[kh * g.w_row + kw * g.w_col];
        off_min = n == 0 ? off[n] : std::min(off_min, off[n]);
        off_max = n == 0 ? off[n] : std::max(off_max, off[n]);
        ++n;
      }
    }
  }

  HWY_INLINE V Apply(D d, I t0, I ow, V acc) const {
    if (t0 + off_min >= 0 && t0 + off_max + LanesI(d) <= ow) {  // every load inside its row
      for (int k = 0; k < n; ++k) acc = hn::MulAdd(hn::LoadU(d, row[k] + off[k] + t0), hn::Set(d, w[k]), acc);
    } else {
      for (int k = 0; k < n; ++k) acc = hn::MulAdd(LoadClipped(d, row[k], off[k] + t0, ow), hn::Set(d, w[k]), acc);
    }
    return acc;
  }
};

/// PhasePlane for w stride 2 with kh*kw <= PhaseTaps::kMax: both column phases of a diff_src
/// row at once, so that full vectors store interleaved as two contiguous vectors.
inline void PairPlane(const Plane& g, const float* dy, const float* w, bool accumulate, float* dx) {
  const D d;
  const I L = LanesI(d);
  PhaseTaps even, odd;
  const I t_even = (g.iw + 1) / 2, t_odd = g.iw / 2;
  for (I iy = 0; iy < g.ih; ++iy) {
    float* yr = dx + iy * g.x_row;
    even.Gather(g, dy, w, iy, 0);
    odd.Gather(g, dy, w, iy, 1);
    for (I t0 = 0; t0 < t_even; t0 += L) {
      const I n0 = std::min(L, t_even - t0), n1 = Clamp(t_odd - t0, 0, L);
      float* out = yr + 2 * t0;
      const bool full = n0 == L && n1 == L;
      V a0 = hn::Zero(d), a1 = hn::Zero(d);
      if (accumulate) {
        if (full) {
          hn::LoadInterleaved2(d, out, a0, a1);
        } else {
          a0 = LoadStrided(d, out, 2, n0);
          if (n1 > 0) a1 = LoadStrided(d, out + 1, 2, n1);
        }
      }
      a0 = even.Apply(d, t0, g.ow, a0);
      a1 = odd.Apply(d, t0, g.ow, a1);
      if (full) {
        hn::StoreInterleaved2(a0, a1, d, out);
      } else {
        StoreStrided(d, a0, out, 2, n0);
        if (n1 > 0) StoreStrided(d, a1, out + 1, 2, n1);
      }
    }
  }
}

/// Backward-data of every (image, channel) plane: the first multiplier writes, others add.
inline void BwdDataPhaseAll(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  const Plane g = FwdPlane(p);
  for (I n = 0; n < p.mb; ++n)
    for (I c = 0; c < p.g; ++c) {
      float* y = diff_src + n * p.src_s[0] + c * p.src_s[1];
      for (I m = 0; m < p.ocg; ++m) {
        const I o = c * p.ocg + m;
        const float* dy = diff_dst + n * p.dst_s[0] + o * p.dst_s[1];
        if (g.sw == 2 && g.kh * g.kw <= PhaseTaps::kMax)
          PairPlane(g, dy, wei + o * p.wei_s[0], m > 0, y);
        else
          PhasePlane(g, dy, wei + o * p.wei_s[0], m > 0, y);
      }
    }
}

}  // namespace dwnchw
}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#endif  // include guard
