// Keras' functional convolutions: Keras-layout kernels checked, viewed in PyTorch layout and run
// through ag::conv2d on channels-last views of NHWC tensors (no pixel loops here).
#include "convkit/autograd/functional.hpp"
#include "convkit/nn/keras.hpp"
#include "core/check.hpp"
#include "nn/keras_common.hpp"

namespace convkit::nn::keras {

using convkit::detail::require;
using detail::Geo;
using detail::I;
using detail::shape_str;

namespace {

// The input's channel count after the output-size check, for the functional forms.
I checked_channels(const std::string& layer, const Geo& geo, const ag::Variable& x) {
  require(x.defined(), "{}: the input is undefined", layer);
  detail::output_shape(layer, geo, x.shape(), 1);
  return detail::input_channels(layer, geo, x.shape());
}

// Checks a Keras kernel's rank, spatial size and the two trailing sizes.
void expect_kernel(const std::string& layer, const char* name, const ag::Variable& k,
                   std::array<I, 2> spatial, I in, I out) {
  require(k.defined(), "{}: {} is undefined", layer, name);
  const Shape want{spatial[0], spatial[1], in, out};
  require(k.shape() == want, "{}: {} must have shape {}, got {}", layer, name, shape_str(want),
          shape_str(k.shape()));
}

void expect_bias(const std::string& layer, const ag::Variable& b, I n) {
  require(!b.defined() || b.shape() == Shape{n}, "{}: bias must have shape ({},), got {}", layer, n,
          b.defined() ? shape_str(b.shape()) : "-");
}

}  // namespace

ag::Variable depthwise_conv2d(const ag::Variable& x, const ag::Variable& kernel,
                              const ag::Variable& bias, const DepthwiseConv2DOpts& o) {
  const std::string layer = "DepthwiseConv2D";
  const Geo geo =
      detail::parse_geo(layer, o.kernel_size, o.strides, o.dilation_rate, o.padding, o.data_format);
  const I in = checked_channels(layer, geo, x);
  expect_kernel(layer, "kernel", kernel, geo.kernel, in, o.depth_multiplier);
  expect_bias(layer, bias, in * o.depth_multiplier);
  const ag::Variable y = ag::conv2d(detail::to_nchw(x, geo), detail::depthwise_kernel_view(kernel),
                                    bias, geo.conv_options(in));
  return detail::from_nchw(y, geo);
}

ag::Variable separable_conv2d(const ag::Variable& x, const ag::Variable& depthwise_kernel,
                              const ag::Variable& pointwise_kernel, const ag::Variable& bias,
                              const SeparableConv2DOpts& o) {
  const std::string layer = "SeparableConv2D";
  const Geo geo =
      detail::parse_geo(layer, o.kernel_size, o.strides, o.dilation_rate, o.padding, o.data_format);
  const I in = checked_channels(layer, geo, x), mid = in * o.depth_multiplier;
  expect_kernel(layer, "depthwise_kernel", depthwise_kernel, geo.kernel, in, o.depth_multiplier);
  expect_kernel(layer, "pointwise_kernel", pointwise_kernel, {1, 1}, mid, o.filters);
  expect_bias(layer, bias, o.filters);
  const ag::Variable m =
      ag::conv2d(detail::to_nchw(x, geo), detail::depthwise_kernel_view(depthwise_kernel), {},
                 geo.conv_options(in));
  const ag::Variable y = ag::conv2d(m, detail::conv_kernel_view(pointwise_kernel), bias, {});
  return detail::from_nchw(y, geo);
}

ag::Variable conv2d(const ag::Variable& x, const ag::Variable& kernel, const ag::Variable& bias,
                    const Conv2DOpts& o) {
  const std::string layer = "Conv2D";
  const Geo geo =
      detail::parse_geo(layer, o.kernel_size, o.strides, o.dilation_rate, o.padding, o.data_format);
  const I in = checked_channels(layer, geo, x);
  require(o.groups > 0 && in % o.groups == 0,
          "{}: The number of input channels must be evenly divisible by the number of groups. "
          "Received groups={}, but the input has {} channels (full input shape is {}).",
          layer, o.groups, in, shape_str(x.shape()));
  expect_kernel(layer, "kernel", kernel, geo.kernel, in / o.groups, o.filters);
  expect_bias(layer, bias, o.filters);
  const ag::Variable y = ag::conv2d(detail::to_nchw(x, geo), detail::conv_kernel_view(kernel), bias,
                                    geo.conv_options(o.groups));
  return detail::from_nchw(y, geo);
}

}  // namespace convkit::nn::keras
