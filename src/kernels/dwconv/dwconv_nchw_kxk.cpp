// Depthwise NCHW 3x3, 5x5 and 7x7 kernels at stride 1 and 2 (forward with bias, backward-data):
// the sliding-row engine with the kernel width and stride fixed at compile time, so the tap
// loops unroll; compiled for AVX2, AVX-512 and a portable fallback, chosen at run time.
#include "kernels/dwconv/dwconv_nchw.hpp"

// Keep the compiled targets few: AVX2, AVX3 and the baseline.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nchw_kxk.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nchw_phase-inl.hpp"
#include "kernels/dwconv/dwconv_nchw_rows-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {

// `which` is K*10 + S.
void KxkFwd(const ConvParams& p, const float* src, const float* wei, const float* bias, float* dst,
            int which) {
  constexpr int N = 4;  // output vectors per block
  switch (which) {
    case 31: return dwnchw::FwdAll<3, 1, true, N>(p, src, wei, bias, dst);
    case 32: return dwnchw::FwdAll<3, 2, true, N>(p, src, wei, bias, dst);
    case 51: return dwnchw::FwdAll<5, 1, true, N>(p, src, wei, bias, dst);
    case 52: return dwnchw::FwdAll<5, 2, true, N>(p, src, wei, bias, dst);
    case 71: return dwnchw::FwdAll<7, 1, true, N>(p, src, wei, bias, dst);
    default: return dwnchw::FwdAll<7, 2, true, N>(p, src, wei, bias, dst);
  }
}

void KxkBwdData(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src, int which) {
  constexpr int N = 4;
  if (p.stride[1] != 1) which = 0;  // the flip needs stride 1 in both directions
  switch (which) {
    case 31: return dwnchw::BwdDataFlipAll<3, true, N>(p, diff_dst, wei, diff_src);
    case 51: return dwnchw::BwdDataFlipAll<5, true, N>(p, diff_dst, wei, diff_src);
    case 71: return dwnchw::BwdDataFlipAll<7, true, N>(p, diff_dst, wei, diff_src);
    default: return dwnchw::BwdDataPhaseAll(p, diff_dst, wei, diff_src);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(KxkFwd);
HWY_EXPORT(KxkBwdData);

template <int K, int S>
void dwconv_nchw_kxk_fwd_hwy(const ConvParams& p, const float* src, const float* wei, const float* bias,
                             float* dst) {
  HWY_DYNAMIC_DISPATCH(KxkFwd)(p, src, wei, bias, dst, K * 10 + S);
}

template <int K, int S>
void dwconv_nchw_kxk_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                                  float* diff_src) {
  HWY_DYNAMIC_DISPATCH(KxkBwdData)(p, diff_dst, wei, diff_src, K * 10 + S);
}

#define CONVKIT_DWCONV_NCHW_KXK(K, S)                                                              \
  template void dwconv_nchw_kxk_fwd_hwy<K, S>(const ConvParams&, const float*, const float*,     \
                                              const float*, float*);                             \
  template void dwconv_nchw_kxk_bwd_data_hwy<K, S>(const ConvParams&, const float*, const float*, \
                                                   float*);
CONVKIT_DWCONV_NCHW_KXK(3, 1)
CONVKIT_DWCONV_NCHW_KXK(3, 2)
CONVKIT_DWCONV_NCHW_KXK(5, 1)
CONVKIT_DWCONV_NCHW_KXK(5, 2)
CONVKIT_DWCONV_NCHW_KXK(7, 1)
CONVKIT_DWCONV_NCHW_KXK(7, 2)
#undef CONVKIT_DWCONV_NCHW_KXK

}  // namespace convkit::kernels
#endif  // HWY_ONCE
