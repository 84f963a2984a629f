// Depthwise NCHW kernels for large kernels (kw >= 9, e.g. RepLKNet's 13x13 and 31x31) at
// stride 1: the sliding-row engine with wide register blocks (forward with bias,
// backward-data as the flipped-kernel forward).
#include "kernels/dwconv/dwconv_nchw.hpp"

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nchw_large.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nchw_rows-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {

// Each tap costs one broadcast for N multiply-adds whose loads fold into the FMA; 16
// registers hold 4 accumulators plus temporaries, 32 hold more.
constexpr int kLargeN = dwnchw::kManyRegs ? 4 : 4;

void LargeFwd(const ConvParams& p, const float* src, const float* wei, const float* bias, float* dst) {
  dwnchw::FwdAll<0, 1, true, kLargeN>(p, src, wei, bias, dst);
}

void LargeBwdData(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  dwnchw::BwdDataFlipAll<0, true, kLargeN>(p, diff_dst, wei, diff_src);
}

}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(LargeFwd);
HWY_EXPORT(LargeBwdData);

void dwconv_nchw_large_fwd_hwy(const ConvParams& p, const float* src, const float* wei, const float* bias,
                               float* dst) {
  HWY_DYNAMIC_DISPATCH(LargeFwd)(p, src, wei, bias, dst);
}

void dwconv_nchw_large_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                                    float* diff_src) {
  HWY_DYNAMIC_DISPATCH(LargeBwdData)(p, diff_dst, wei, diff_src);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
