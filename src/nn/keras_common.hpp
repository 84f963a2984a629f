// Shared pieces of the Keras layers (internal): argument checks with Keras' messages, the
// geometry they describe, and the copy-free NHWC <-> channels-last NCHW view.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "convkit/autograd/variable.hpp"
#include "convkit/nn/module.hpp"
#include "convkit/ops/conv_problem.hpp"

namespace convkit::nn::keras::detail {

using I = std::int64_t;

/// The normalized spatial arguments of a Keras convolution layer.
struct Geo {
  std::array<I, 2> kernel{1, 1}, strides{1, 1}, dilation{1, 1};
  bool same = false;          // padding "same" (else "valid")
  bool channels_last = true;  // data_format
  /// The functional options for ag::conv2d with `groups` (Padding::same() implements
  /// TensorFlow's asymmetric 'same' for every stride).
  ConvOptions conv_options(I groups) const;
  /// Keras' output size of one spatial dimension d (0: height, 1: width) for input size n.
  I out_size(int d, I n) const;
};

/// Checks and normalizes kernel_size, strides, dilation_rate, padding and data_format in
/// Keras' order with Keras' messages, prefixed by "<layer>: ".
Geo parse_geo(const std::string& layer, const Ints& kernel_size, const Ints& strides,
              const Ints& dilation_rate, const std::string& padding,
              const std::string& data_format);

/// Checks that x is rank 4 and returns its channel count (axis -1 or 1).
I input_channels(const std::string& layer, const Geo& geo, const Shape& x);
/// The output shape for input shape `x` and `out` channels, in the layer's data_format;
/// throws Keras' "Computed output size would be zero or negative" message.
Shape output_shape(const std::string& layer, const Geo& geo, const Shape& x, I out);

/// x viewed with its dimensions permuted (y.size(i) == x.size(dims[i])), sharing storage
/// when the view is dense in either memory format, else a contiguous copy; differentiable
/// (the gradient is permuted back the same way).
ag::Variable permute_view(const ag::Variable& x, const std::vector<int>& dims);
/// A channels_last input (N, H, W, C) as the logical (N, C, H, W) tensor the conv path takes:
/// a channels-last view of the same memory. channels_first inputs pass through.
ag::Variable to_nchw(const ag::Variable& x, const Geo& geo);
/// The inverse for the output: (N, C, H, W) -> (N, H, W, C) for channels_last.
ag::Variable from_nchw(const ag::Variable& y, const Geo& geo);

/// Keras' kernel (kh, kw, in/groups, out) as the PyTorch weight (out, in/groups, kh, kw);
/// differentiable, a view.
ag::Variable conv_kernel_view(const ag::Variable& kernel);
/// Keras' depthwise kernel (kh, kw, in, m) as the PyTorch weight (in*m, 1, kh, kw).
ag::Variable depthwise_kernel_view(const ag::Variable& kernel);

/// "(3, 3)" for two values, "3" for one: how Keras prints the argument it received.
std::string received(const Ints& v);
/// "(2, 8, 8, 3)": a shape as Keras prints it.
std::string shape_str(const Shape& s);

}  // namespace convkit::nn::keras::detail
