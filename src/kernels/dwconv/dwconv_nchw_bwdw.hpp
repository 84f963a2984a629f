// Depthwise backward-weights kernels for NCHW (W innermost), 1-D and 2-D, float32, Highway.
#pragma once

#include "kernels/conv/conv_params.hpp"

namespace convkit::kernels {

/// True when p is a depthwise (icg == 1, any multiplier ocg) 1-D or 2-D problem whose src
/// and dst rows are contiguous (w stride 1) and whose weights are dense (o, 1, kh, kw).
bool dwconv_nchw_bwdw_layout_ok(const ConvParams& p);

/// Which problems each kernel takes, beyond dwconv_nchw_bwdw_layout_ok: the ones made for
/// K x K (K = 3, 5) at stride S need kw = K and w stride S (any kh, h stride and dilation:
/// kernel rows are only blocked); `large` (dwconv_nchw_bwdw_large.cpp) needs kw >= 7 and w
/// dilation 1; the generic one takes every problem (w strides above 2 run scalar code).
template <int K, int S>
bool dwconv_nchw_bwdw_kxk_supports(const ConvParams& p);
bool dwconv_nchw_bwdw_large_supports(const ConvParams& p);
bool dwconv_nchw_bwdw_generic_supports(const ConvParams& p);

/// diff_wei[c*ocg+m][0][kh][kw] = sum over images and output pixels of
/// diff_dst[n][c*ocg+m][oh][ow] * src[n][c][oh*sh - ph + kh*dh][ow*sw - pw + kw*dw].
/// Reduces over the whole batch of the call in a fixed order; writes every diff_wei element.
template <int K, int S>
void dwconv_nchw_bwdw_kxk_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                              float* diff_wei);
void dwconv_nchw_bwdw_large_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                                float* diff_wei);
void dwconv_nchw_bwdw_generic_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                                  float* diff_wei);

}  // namespace convkit::kernels
