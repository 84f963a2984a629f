// Depthwise NCHW kernels for any kernel, stride and dilation (forward with bias,
// backward-data): the sliding-row engine with everything at run time for w stride 1 and 2,
// scalar rows above; backward-data as a flipped forward at stride 1, else the phase gather.
#include "kernels/dwconv/dwconv_nchw.hpp"

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nchw_generic.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nchw_phase-inl.hpp"
#include "kernels/dwconv/dwconv_nchw_rows-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {

void GenericFwd(const ConvParams& p, const float* src, const float* wei, const float* bias, float* dst) {
  constexpr int N = 2;
  if (p.stride[2] == 1) return dwnchw::FwdAll<0, 1, false, N>(p, src, wei, bias, dst);
  if (p.stride[2] == 2) return dwnchw::FwdAll<0, 2, false, N>(p, src, wei, bias, dst);
  dwnchw::FwdAll<0, 0, false, N>(p, src, wei, bias, dst);
}

void GenericBwdData(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  if (p.stride[1] == 1 && p.stride[2] == 1)
    return dwnchw::BwdDataFlipAll<0, false, 2>(p, diff_dst, wei, diff_src);
  dwnchw::BwdDataPhaseAll(p, diff_dst, wei, diff_src);
}

}  // namespace HWY_NAMESPACE
}  // namespace convkit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace convkit::kernels {

HWY_EXPORT(GenericFwd);
HWY_EXPORT(GenericBwdData);

void dwconv_nchw_generic_fwd_hwy(const ConvParams& p, const float* src, const float* wei,
                                 const float* bias, float* dst) {
  HWY_DYNAMIC_DISPATCH(GenericFwd)(p, src, wei, bias, dst);
}

void dwconv_nchw_generic_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                                      float* diff_src) {
  HWY_DYNAMIC_DISPATCH(GenericBwdData)(p, diff_dst, wei, diff_src);
}

}  // namespace convkit::kernels
#endif  // HWY_ONCE
