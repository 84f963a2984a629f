// The functional convolution API: forward and the three backward entry points.
#pragma once

#include "convkit/core/tensor.hpp"
#include "convkit/ops/conv_problem.hpp"

namespace convkit {

/// dst = conv(src, wei) + bias, for the problem `p` (direct or transposed). `bias` may be
/// undefined when p.has_bias is false. dst has p.format's memory layout.
///   ConvProblem p = ConvProblem::make(x, w, b, {.padding = 1, .groups = 32});
///   Tensor y = conv_forward(p, x, w, b);
Tensor conv_forward(const ConvProblem& p, const Tensor& src, const Tensor& wei,
                    const Tensor& bias = {});
/// diff_src = d(loss)/d(src) given diff_dst = d(loss)/d(dst); shape p.src_shape().
Tensor conv_backward_data(const ConvProblem& p, const Tensor& diff_dst, const Tensor& wei);
/// diff_wei = d(loss)/d(wei); shape p.wei_shape(), contiguous.
Tensor conv_backward_weights(const ConvProblem& p, const Tensor& src, const Tensor& diff_dst);
/// diff_bias = d(loss)/d(bias): diff_dst summed over batch and space; shape (oc).
Tensor conv_backward_bias(const ConvProblem& p, const Tensor& diff_dst);

/// PyTorch-style one-call forms: build the problem from the tensors and run forward.
/// src rank must be 3 (conv1d), 4 (conv2d) or 5 (conv3d).
Tensor conv1d(const Tensor& src, const Tensor& wei, const Tensor& bias = {},
              const ConvOptions& options = {});
Tensor conv2d(const Tensor& src, const Tensor& wei, const Tensor& bias = {},
              const ConvOptions& options = {});
Tensor conv3d(const Tensor& src, const Tensor& wei, const Tensor& bias = {},
              const ConvOptions& options = {});
Tensor conv_transpose1d(const Tensor& src, const Tensor& wei, const Tensor& bias = {},
                        const ConvOptions& options = {});
Tensor conv_transpose2d(const Tensor& src, const Tensor& wei, const Tensor& bias = {},
                        const ConvOptions& options = {});
Tensor conv_transpose3d(const Tensor& src, const Tensor& wei, const Tensor& bias = {},
                        const ConvOptions& options = {});

}  // namespace convkit
