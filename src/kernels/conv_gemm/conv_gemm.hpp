// Dense and grouped convolutions through a CBLAS GEMM (OpenBLAS): pointwise without copies,
// everything else through im2col / col2im; declarations for the conv kernel list.
#pragma once

#include <cstdint>

#include "kernels/conv/conv_params.hpp"

namespace convkit::kernels {

/// 1x1, stride 1, no padding, input and output pixels flattening to one stride: one GEMM per
/// image and group straight on the tensors. Nchw: channels x pixels at unit pixel stride;
/// Nhwc: pixels x channels at unit channel stride (channels-last).
enum class GemmLayout { Nchw, Nhwc };

template <GemmLayout L>
bool conv_1x1_gemm_supports(const ConvParams& p);
/// Images per GEMM of a dense channels-last batch (ConvKernel::image_group): a power of two
/// up to 4 that gives small images 256 pixels; 1 for other layouts and larger images.
std::int64_t conv_1x1_gemm_image_group(const ConvParams& p);
/// Images per backward-weights chunk (ConvKernel::weight_chunk): whole image groups of at
/// least 256 pixels, and enough that a chunk's sums take at most a quarter of what it reads.
std::int64_t conv_1x1_gemm_weight_chunk(const ConvParams& p);
template <typename T>
void conv_1x1_gemm_fwd(const ConvParams& p, const T* src, const T* wei, const T* bias, T* dst);
template <typename T>
void conv_1x1_gemm_bwd_data(const ConvParams& p, const T* diff_dst, const T* wei, T* diff_src);
template <typename T>
void conv_1x1_gemm_bwd_weights(const ConvParams& p, const T* src, const T* diff_dst, T* diff_wei);

/// Any non-depthwise problem in any layout: im2col of a block of output pixels into scratch,
/// then GEMM (col2im after it for backward-data).
bool conv_im2col_gemm_supports(const ConvParams& p);
template <typename T>
void conv_im2col_gemm_fwd(const ConvParams& p, const T* src, const T* wei, const T* bias, T* dst);
template <typename T>
void conv_im2col_gemm_bwd_data(const ConvParams& p, const T* diff_dst, const T* wei, T* diff_src);
template <typename T>
void conv_im2col_gemm_bwd_weights(const ConvParams& p, const T* src, const T* diff_dst,
                                  T* diff_wei);

}  // namespace convkit::kernels
