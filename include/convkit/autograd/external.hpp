// Convolutions whose weights come from elsewhere: per-sample kernels, StyleGAN2 modulation,
// separable convolution with given depthwise and pointwise weights. All differentiable.
#pragma once

#include <cstdint>
#include <vector>

#include "convkit/autograd/functional.hpp"

namespace convkit::ag {

/// Each sample convolved with its own kernel (hypernetworks, dynamic filters):
///   y[n] = conv2d(x[n:n+1], w[n], b[n], options)
/// x (N, C, H, W), w (N, out, C/groups, kh, kw), b (N, out) or undefined; y (N, out, oh, ow)
/// with oh, ow as conv2d. options.groups are the groups inside one sample. It runs as one
/// grouped convolution: x viewed as (1, N*C, H, W), w as (N*out, C/groups, kh, kw), groups
/// N*groups, so it costs what N separate convolutions cost and its gradient (to x, w and b)
/// is conv2d's. Channels-last x gives a channels-last y. N must be at least 1.
///   Variable w = ag::reshape(hyper(style), {N, 8, 3, 3, 3});  // weights made at run time
///   Variable y = ag::conv2d_per_sample(x, w, {}, {.padding = 1});
Variable conv2d_per_sample(const Variable& x, const Variable& w, const Variable& b = {},
                           const ConvOptions& options = {});

/// Options of modulated_conv2d; stride, padding, dilation and padding_mode as ConvOptions.
struct ModulatedConvOptions {
  std::vector<std::int64_t> stride{1};
  Padding padding{};
  std::vector<std::int64_t> dilation{1};
  PaddingMode padding_mode = PaddingMode::Zeros;
  bool demodulate = true;  // rescale every (sample, output channel) kernel to unit norm
  double eps = 1e-8;       // added to the squared norm before the rsqrt; >= 0
  bool fused = true;       // per-sample grouped convolution; false: scale x, shared conv, scale y
};

/// StyleGAN2's modulated convolution. weight (out, in, kh, kw), styles (N, in), x (N, in, H, W),
/// bias (out) or undefined:
///   w'[n,o,i,:,:]  = weight[o,i,:,:] * styles[n,i]
///   d[n,o]         = rsqrt(sum_{i,kh,kw} w'[n,o,i,:,:]^2 + eps)    (demodulate only)
///   y[n]           = conv2d(x[n], w'[n] * d[n,:]) + bias
/// fused runs that as conv2d_per_sample; the non-fused form (StyleGAN2's fused_modconv=False)
/// computes conv2d(x * styles[:, :, None, None], weight) * d[:, :, None, None] + bias with
/// the one shared weight. Both give the same y and the same gradients to x, weight, styles
/// and bias (up to rounding).
///   Variable s = affine(latent);   // (N, in)
///   Variable y = ag::modulated_conv2d(x, weight, s, {.padding = 1});
Variable modulated_conv2d(const Variable& x, const Variable& weight, const Variable& styles,
                          const ModulatedConvOptions& options = {}, const Variable& bias = {});

/// Options of separable_conv2d: stride, padding and dilation of the depthwise step (the
/// pointwise step is a plain 1x1 convolution), and its padding mode.
struct SeparableConvOptions {
  std::vector<std::int64_t> stride{1};
  Padding padding{};
  std::vector<std::int64_t> dilation{1};
  PaddingMode padding_mode = PaddingMode::Zeros;
};

/// Depthwise-separable convolution with given weights (Keras SeparableConv2D, MobileNet):
///   t = conv2d(x, dw, dw_bias, {groups = C, options})   dw (C*mult, 1, kh, kw), dw_bias (C*mult)
///   y = conv2d(t, pw, pw_bias)                          pw (out, C*mult, 1, 1), pw_bias (out)
/// Depthwise output channel c*mult + m reads input channel c (PyTorch's order). Either bias
/// may be undefined. Composed of two conv2d calls, so differentiable in all five inputs.
///   Variable y = ag::separable_conv2d(x, dw, pw, {}, pb, {.padding = 1});
Variable separable_conv2d(const Variable& x, const Variable& dw, const Variable& pw,
                          const Variable& dw_bias = {}, const Variable& pw_bias = {},
                          const SeparableConvOptions& options = {});

/// separable_conv2d with a depthwise and pointwise kernel per sample, through
/// conv2d_per_sample: dw (N, C*mult, 1, kh, kw), pw (N, out, C*mult, 1, 1), dw_bias
/// (N, C*mult), pw_bias (N, out), each bias optional.
Variable separable_conv2d_per_sample(const Variable& x, const Variable& dw, const Variable& pw,
                                     const Variable& dw_bias = {}, const Variable& pw_bias = {},
                                     const SeparableConvOptions& options = {});

}  // namespace convkit::ag
