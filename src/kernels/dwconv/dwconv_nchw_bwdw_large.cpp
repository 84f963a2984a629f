// Depthwise backward-weights for large kernels (kw >= 7) on NCHW rows, float32: kernel
// columns in vector lanes, so that narrow rows (28 wide under a 31-wide kernel) stay vectorized.
//
// Memory walked, per output channel o = c*ocg + m and image n (rows contiguous in w):
//   src       [n][c][ih][iw]     one row at a time
//   diff_dst  [n][o][oh][ow]     the R rows oh = (ih + ph - kh*dh) / sh that meet src row ih
//   diff_wei  [o][0][kh][kw]     a block of R kernel rows x T*L kernel columns in registers
// The caller guarantees dwconv_nchw_bwdw_large_supports(p) (w dilation 1).
//
// For a src row ih and an output column ow, the taps kw0 + j (j < T*L) read the contiguous
// src elements ow*sw - pw + kw0 + j: T vector loads serve all R kernel rows, each of which
// multiplies them with one broadcast diff_dst element, so T + R loads feed R*T FMAs. Lanes
// whose src column falls outside the row are masked loads (AVX2 and AVX-512 masked loads do
// not touch masked-off memory). Each lane is one tap: no horizontal sums; a lane adds its
// image in float, in (ih, ow) order, and images are added in double.
#include <algorithm>
#include <cstdint>

#include "kernels/dwconv/dwconv_nchw_bwdw.hpp"

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS ((HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL) & ~(HWY_BASELINE_TARGETS))
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nchw_bwdw_large.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using I = std::int64_t;
// 256-bit vectors and the same blocks on AVX-512 too: on the Zen 4 we measured, 512-bit
// vectors and larger blocks (more kernel rows, more row pointers) were slower, not faster.
using D = hn::CappedTag<float, 8>;
using V = hn::Vec<D>;

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define CONVKIT_SAFE_MASKED_LOAD 1

// The address of row[i] for an i that may lie outside the row; only the lanes of `m`, which
// are inside it, are read.
HWY_INLINE V load_part(D d, hn::Mask<D> m, const float* row, I i) {
  const auto at = reinterpret_cast<std::uintptr_t>(row) + static_cast<std::uintptr_t>(i) * sizeof(float);
  return hn::MaskedLoad(m, d, reinterpret_cast<const float*>(at));
}

template <int R, int T>
void run(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
  const D d;
  constexpr I L = static_cast<I>(hn::MaxLanes(D()));
  const I ih_n = p.in[1], iw_n = p.in[2], oh_n = p.out[1], ow_n = p.out[2];
  const I sh = p.stride[1], sw = p.stride[2], dh = p.dilation[1], ph = p.pad[1], pw = p.pad[2];
  const I kh_n = p.k[1], kw_n = p.k[2];
  const V iota = hn::Iota(d, 0.0f);
  for (I o = 0; o < p.g * p.ocg; ++o) {
    const I c = o / p.ocg;
    float* w = diff_wei + o * p.wei_s[0];
    // Balanced row blocks: 31 rows in blocks of at most 10 are 8 + 8 + 8 + 7, not 10+10+10+1.
    const I per = (kh_n + (kh_n + R - 1) / R - 1) / ((kh_n + R - 1) / R);
    for (I kh0 = 0; kh0 < kh_n; kh0 += per) {
      const I rows = std::min<I>(per, kh_n - kh0);
      for (I kw0 = 0; kw0 < kw_n; kw0 += T * L) {
        double tot[R][T * L] = {};
        for (I n = 0; n < p.mb; ++n) {
          const float* x = src + n * p.src_s[0] + c * p.src_s[1];
          const float* dy = diff_dst + n * p.dst_s[0] + o * p.dst_s[1];
          V acc[R][T];
          for (int r = 0; r < R; ++r)
            for (int t = 0; t < T; ++t) acc[r][t] = hn::Zero(d);
          for (I ih = 0; ih < ih_n; ++ih) {
            const float* dyr[R];
            bool any = false;
            for (int r = 0; r < R; ++r) {
              const I num = ih + ph - (kh0 + r) * dh;  // = oh * sh
              const bool ok = r < rows && num >= 0 && num % sh == 0 && num / sh < oh_n;
              dyr[r] = ok ? dy + (num / sh) * p.dst_s[3] : nullptr;
              any = any || ok;
            }
            if (!any) continue;
            const float* xr = x + ih * p.src_s[3];
            for (I ow = 0; ow < ow_n; ++ow) {
              V xv[T];
              for (int t = 0; t < T; ++t) {
                const I first = ow * sw - pw + kw0 + t * L;  // src column of lane 0
                if (first >= 0 && first + L <= iw_n) {
                  xv[t] = hn::LoadU(d, xr + first);
                } else if (first + L <= 0 || first >= iw_n) {
                  xv[t] = hn::Zero(d);
                } else {
                  const auto inside = hn::And(iota >= hn::Set(d, static_cast<float>(-first)),
                                              iota < hn::Set(d, static_cast<float>(iw_n - first)));
                  xv[t] = load_part(d, inside, xr, first);
                }
              }
              for (int r = 0; r < R; ++r) {
                if (!dyr[r]) continue;
                const V b = hn::Set(d, dyr[r][ow]);
                for (int t = 0; t < T; ++t) acc[r][t] = hn::MulAdd(xv[t], b, acc[r][t]);
              }
            }
          }
          HWY_ALIGN float lanes[L];
          for (int r = 0; r < R; ++r)
            for (int t = 0; t < T; ++t) {
              hn::Store(acc[r][t], d, lanes);
              for (I j = 0; j < L; ++j) tot[r][t * L + j] += static_cast<double>(lanes[j]);
            }
        }
        for (I r = 0; r < rows; ++r)
          for (I j = 0; j < T * L && kw0 + j < kw_n; ++j)
            w[(kh0 + r) * kw_n + kw0 + j] = static_cast<float>(tot[r][j]);
      }
    }
  }
}
#endif

}  // namespace

void BwdwLarge(const ConvParams& p, const float* src, const float* diff_dst, float* diff_wei) {
#ifdef CONVKIT_SAFE_MASKED_LOAD
  constexpr I L = static_cast<I>(hn::MaxLanes(D()));
  if (p.k[2] <= L)
    run<10, 1>(p, src, diff_dst, diff_wei);
  else
    run<5, 2>(p, src, diff_dst, diff_wei);
#else
  // Targets whose masked loads may read masked-off memory take the per-tap path.
  dwconv_nchw_bwdw_generic_hwy(p, src, diff_dst, diff_wei);
#endif
}

#undef CONVKIT_SAFE_MASKED_LOAD

}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(BwdwLarge);

bool dwconv_nchw_bwdw_large_supports(const ConvParams& p) {
  return dwconv_nchw_bwdw_layout_ok(p) && p.k[2] >= 7 && p.dilation[2] == 1;
}

void dwconv_nchw_bwdw_large_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                                float* diff_wei) {
  HWY_DYNAMIC_DISPATCH(BwdwLarge)(p, src, diff_dst, diff_wei);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
