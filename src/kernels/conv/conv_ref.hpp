// The reference convolution kernels: naive loops accumulating in double, for every problem.
#pragma once

#include "kernels/conv/conv_params.hpp"

namespace convkit::kernels {

/// dst = conv(src, wei) + bias (bias may be null). Writes every dst element.
template <typename T>
void conv_fwd_ref(const ConvParams& p, const T* src, const T* wei, const T* bias, T* dst);
/// diff_src = the adjoint of conv applied to diff_dst. Writes every diff_src element.
template <typename T>
void conv_bwd_data_ref(const ConvParams& p, const T* diff_dst, const T* wei, T* diff_src);
/// diff_wei = sum over batch and output pixels of diff_dst x src. Writes every diff_wei element;
/// diff_wei is dense in the p.wei_s layout.
template <typename T>
void conv_bwd_weights_ref(const ConvParams& p, const T* src, const T* diff_dst, T* diff_wei);
/// diff_bias[o] = sum of diff_dst over batch and output pixels (contiguous, g*ocg values).
template <typename T>
void conv_bwd_bias_ref(const ConvParams& p, const T* diff_dst, T* diff_bias);

}  // namespace convkit::kernels
