// Depthwise forward and backward-data kernels for NCHW (W innermost), 1-D and 2-D, float32.
#pragma once

#include "kernels/conv/conv_params.hpp"

namespace convkit::kernels {

/// True when p is a depthwise problem these kernels take at all: icg == 1, ocg >= 1, the d
/// slot trivial (1-D or 2-D), src and dst rows contiguous (unit w stride).
bool dwconv_nchw_layout_ok(const ConvParams& p);

/// Kernel width K at w stride S and w dilation 1 (3x3, 5x5, 7x7 and their 1-D forms; kernel
/// rows, h stride and h dilation are taken at run time). Forward with bias fused;
/// backward-data as a flipped-kernel forward at stride 1 in h and w, else the phase gather.
template <int K, int S>
bool dwconv_nchw_kxk_supports(const ConvParams& p);
template <int K, int S>
void dwconv_nchw_kxk_fwd_hwy(const ConvParams& p, const float* src, const float* wei, const float* bias,
                             float* dst);
template <int K, int S>
void dwconv_nchw_kxk_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                                  float* diff_src);

/// Large kernels (9 <= kw <= 63, any kh) at stride 1 and dilation 1: tiles of output rows
/// x vectors in registers, each input load shared by the rows of a tile.
bool dwconv_nchw_large_supports(const ConvParams& p);
void dwconv_nchw_large_fwd_hwy(const ConvParams& p, const float* src, const float* wei, const float* bias,
                               float* dst);
void dwconv_nchw_large_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                                    float* diff_src);

/// Any kernel, stride and dilation (vector code at w stride 1 and 2, scalar above).
bool dwconv_nchw_generic_supports(const ConvParams& p);
void dwconv_nchw_generic_fwd_hwy(const ConvParams& p, const float* src, const float* wei,
                                 const float* bias, float* dst);
void dwconv_nchw_generic_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                                      float* diff_src);

/// Backward-weights of planes up to 64x64 and kernels up to 7 wide without a multiplier, by
/// the channels-last kernels on a channels-last copy of each image
/// (dwconv_nchw_via_nhwc.cpp): each image summed in float, the images in double, in image
/// order, as the channels-last kernels do.
bool dwconv_nchw_bwdw_via_nhwc_supports(const ConvParams& p);
/// Forward and backward-data of kernels wider than 7 at unit stride and dilation without a
/// multiplier, on planes up to 64x64, by the channels-last wide kernel on channels-last
/// copies of runs of images (dwconv_nchw_via_nhwc.cpp); images are independent, so the bits
/// are the channels-last kernel's.
bool dwconv_nchw_wide_via_nhwc_supports(const ConvParams& p);
void dwconv_nchw_wide_via_nhwc_fwd_hwy(const ConvParams& p, const float* src, const float* wei,
                                       const float* bias, float* dst);
void dwconv_nchw_wide_via_nhwc_bwd_data_hwy(const ConvParams& p, const float* diff_dst,
                                            const float* wei, float* diff_src);
void dwconv_nchw_bwdw_via_nhwc_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                                   float* diff_wei);

}  // namespace convkit::kernels
