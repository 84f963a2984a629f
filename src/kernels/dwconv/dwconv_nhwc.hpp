// Depthwise kernels for channels-last tensors (NHWC / NWC, channels innermost), 1-D and 2-D,
// float32, every pass: vectors run along the channels.
#pragma once

#include "kernels/conv/conv_params.hpp"

namespace convkit::kernels {

/// True when p is a depthwise problem (icg == 1, any multiplier ocg) in 1-D or 2-D whose src
/// and dst channels are contiguous (channel stride 1; pixels and rows at any stride) and whose
/// weights are dense (o, 1, kh, kw). Any kernel size, stride, dilation and zero padding.
bool dwconv_nhwc_supports(const ConvParams& p);

/// dst[n][oh][ow][c*ocg+m] = bias + sum over kh, kw of
///   wei[c*ocg+m][kh][kw] * src[n][oh*sh - ph + kh*dh][ow*sw - pw + kw*dw][c].
void dwconv_nhwc_fwd_hwy(const ConvParams& p, const float* src, const float* wei, const float* bias,
                         float* dst);
/// diff_src[n][ih][iw][c] = sum over m and the taps that read (ih, iw) of
///   wei[c*ocg+m][kh][kw] * diff_dst[n][oh][ow][c*ocg+m].
void dwconv_nhwc_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                              float* diff_src);
/// diff_wei[o][0][kh][kw] = sum over images and output pixels of diff_dst * src (as forward);
/// reduces over the whole batch of the call in a fixed order.
void dwconv_nhwc_bwd_weights_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                                 float* diff_wei);

// The faster strategies for the problems they support (same formulas as above).

/// 3x3, unit dilation, multiplier 1; unit stride with any padding, or w stride 2 with padding 1
/// and ow = (iw + 1) / 2 (PyTorch's stride-2 'same'). Forward and backward-data.
bool dwconv_nhwc_k3_supports(const ConvParams& p);
void dwconv_nhwc_k3_fwd_hwy(const ConvParams& p, const float* src, const float* wei,
                            const float* bias, float* dst);
void dwconv_nhwc_k3_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                                 float* diff_src);

/// kw >= 5 at unit stride and dilation, multiplier 1. Forward and backward-data.
bool dwconv_nhwc_wide_supports(const ConvParams& p);
void dwconv_nhwc_wide_fwd_hwy(const ConvParams& p, const float* src, const float* wei,
                              const float* bias, float* dst);
void dwconv_nhwc_wide_bwd_data_hwy(const ConvParams& p, const float* diff_dst, const float* wei,
                                   float* diff_src);

/// Backward-weights of 3x3 kernels, any stride, dilation and multiplier.
bool dwconv_nhwc_bwdw_k3_supports(const ConvParams& p);
void dwconv_nhwc_bwdw_k3_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                             float* diff_wei);

/// Backward-weights of the problems dwconv_nhwc_wide_supports takes.
void dwconv_nhwc_bwdw_wide_hwy(const ConvParams& p, const float* src, const float* diff_dst,
                               float* diff_wei);

}  // namespace convkit::kernels
