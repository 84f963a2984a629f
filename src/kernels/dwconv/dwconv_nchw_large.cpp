// Depthwise NCHW kernels for large kernels (kw >= 9, e.g. RepLKNet's 13x13 and 31x31) at
// stride 1: tiles of output rows x vectors in registers sharing each input load (forward
// with bias, backward-data as the flipped-kernel forward).
#include "kernels/dwconv/dwconv_nchw.hpp"

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL)
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dwconv/dwconv_nchw_large.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "kernels/dwconv/dwconv_nchw_tile-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace convkit::kernels {
namespace HWY_NAMESPACE {

// Tiles of R output rows x N vectors: AVX-512's 32 registers hold 4 x 2 accumulators of 16
// lanes (a 28-wide row in one tile) with room to spare, AVX2's 16 hold 3 x 4 of 8 lanes
// (measured faster than 2 x 4 despite the tight fit).
constexpr int kRows = dwnchw::kManyRegs ? 4 : 3;
constexpr int kVecs = dwnchw::kManyRegs ? 2 : 4;

void LargeFwd(const ConvParams& p, const float* src, const float* wei, const float* bias, float* dst) {
  dwnchw::TileFwdAll<kRows, kVecs>(p, src, wei, bias, dst);
}

void LargeBwdData(const ConvParams& p, const float* diff_dst, const float* wei, float* diff_src) {
  dwnchw::TileBwdDataAll<kRows, kVecs>(p, diff_dst, wei, diff_src);
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
