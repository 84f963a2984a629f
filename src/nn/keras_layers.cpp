// Keras' DepthwiseConv2D, SeparableConv2D and Conv2D layers: building, Keras' initialization,
// count_params and weight lists; forward calls the functional forms (keras_functional.cpp).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "convkit/autograd/functional.hpp"
#include "convkit/nn/keras.hpp"
#include "core/check.hpp"
#include "nn/keras_common.hpp"

namespace convkit::nn::keras {

using convkit::detail::require;
using detail::Geo;
using detail::I;
using detail::shape_str;

// ---- KerasLayer -----------------------------------------------------------------------------

KerasLayer::KerasLayer(const Common& c) : type_(c.type), dtype_(c.dtype), common_(c) {
  const Geo geo = detail::parse_geo(c.type, c.kernel_size, c.strides, c.dilation_rate, c.padding,
                                    c.data_format);
  kh_ = geo.kernel[0];
  kw_ = geo.kernel[1];
  channels_last_ = geo.channels_last;
  require(c.dtype == DType::F32 || c.dtype == DType::F64,
          "{}: dtype must be float32 or float64, got {}", c.type, dtype_name(c.dtype));
  require(c.in_channels >= 0, "{}: in_channels must be >= 0 (0: build later), got {}", c.type,
          c.in_channels);
}

void KerasLayer::build_channels(I in, const std::string& shape) {
  if (built()) {
    require(in == in_channels_,
            "{}: the layer was built for {} input channels; cannot build it again for input "
            "shape {}",
            type_, in_channels_, shape);
    return;
  }
  require(in > 0, "{}: the input must have at least one channel, got input shape {}", type_, shape);
  create_weights(in);
  in_channels_ = in;
}

void KerasLayer::build(const Shape& input_shape) {
  const Geo geo = detail::parse_geo(type_, common_.kernel_size, common_.strides,
                                    common_.dilation_rate, common_.padding, common_.data_format);
  build_channels(detail::input_channels(type_, geo, input_shape), shape_str(input_shape));
}

I KerasLayer::check_input(const Shape& x) const {
  const Geo geo = detail::parse_geo(type_, common_.kernel_size, common_.strides,
                                    common_.dilation_rate, common_.padding, common_.data_format);
  const I in = detail::input_channels(type_, geo, x);
  require(built(),
          "{}: the layer is not built: give .in_channels or call build(input_shape) before the "
          "first call (input shape {})",
          type_, shape_str(x));
  require(in == in_channels_,
          "{}: Input 0 is incompatible with the layer: expected axis {} of input shape to have "
          "value {}, but received input with shape {}",
          type_, channels_last_ ? -1 : 1, in_channels_, shape_str(x));
  return in;
}

Shape KerasLayer::compute_output_shape(const Shape& input_shape) const {
  const Geo geo = detail::parse_geo(type_, common_.kernel_size, common_.strides,
                                    common_.dilation_rate, common_.padding, common_.data_format);
  const I in = detail::input_channels(type_, geo, input_shape);
  return detail::output_shape(type_, geo, input_shape, out_channels(in));
}

std::int64_t KerasLayer::count_params() const {
  require(built(),
          "{}: You tried to call `count_params` on layer '{}', but the layer isn't built. You "
          "can build it manually via: `layer.build(batch_input_shape)`.",
          type_, type_);
  I n = 0;
  for (const auto& [name, p] : own_parameters()) n += p.numel();
  return n;
}

std::vector<Tensor> KerasLayer::get_weights() const {
  std::vector<Tensor> out;
  for (const auto& [name, p] : own_parameters()) out.push_back(p.value().clone());
  return out;
}

void KerasLayer::set_weights(const std::vector<Tensor>& weights) {
  const auto& params = own_parameters();
  require(weights.size() == params.size(),
          "{}: You called `set_weights(weights)` on layer '{}' with a weight list of length {}, "
          "but the layer was expecting {} weights.",
          type_, type_, weights.size(), params.size());
  for (std::size_t i = 0; i < params.size(); ++i)
    require(weights[i].defined() && weights[i].shape() == params[i].second.shape(),
            "{}: Layer {} weight shape {} is not compatible with provided weight shape {}.", type_,
            params[i].first, shape_str(params[i].second.shape()),
            weights[i].defined() ? shape_str(weights[i].shape()) : "-");
  for (std::size_t i = 0; i < params.size(); ++i) params[i].second.set_value(weights[i].to(dtype_));
}

std::optional<Geometry> KerasLayer::geometry(const Shape&) const {
  const Geo geo = detail::parse_geo(type_, common_.kernel_size, common_.strides,
                                    common_.dilation_rate, common_.padding, common_.data_format);
  return Geometry{.kernel = {geo.kernel[0], geo.kernel[1]},
                  .stride = {geo.strides[0], geo.strides[1]},
                  .dilation = {geo.dilation[0], geo.dilation[1]}};
}

Tensor KerasLayer::glorot_uniform(const Shape& shape) const {
  // keras compute_fans for a rank-4 kernel (..., input_depth, depth).
  const I receptive = shape[0] * shape[1];
  const I fan_in = shape[2] * receptive, fan_out = shape[3] * receptive;
  const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return Tensor::uniform(shape, -limit, limit, next_seed(), dtype_);
}

Tensor KerasLayer::zeros(I n) const { return Tensor::zeros({n}, dtype_); }

// ---- the three layers -----------------------------------------------------------------------

DepthwiseConv2D::DepthwiseConv2D(const DepthwiseConv2DOpts& o)
    : KerasLayer(Common{"DepthwiseConv2D", o.in_channels, o.kernel_size, o.strides, o.dilation_rate,
                        o.padding, o.data_format, o.dtype}),
      options_(o) {
  require(o.depth_multiplier > 0,
          "DepthwiseConv2D: Invalid value for argument `depth_multiplier`. Expected a strictly "
          "positive value. Received depth_multiplier={}.",
          o.depth_multiplier);
  if (o.in_channels > 0)
    build_channels(o.in_channels, fmt::format("in_channels={}", o.in_channels));
}

void DepthwiseConv2D::create_weights(I in) {
  kernel = register_parameter("kernel", glorot_uniform({kh_, kw_, in, options_.depth_multiplier}));
  if (options_.use_bias) bias = register_parameter("bias", zeros(out_channels(in)));
}

I DepthwiseConv2D::out_channels(I in) const { return in * options_.depth_multiplier; }

ag::Variable DepthwiseConv2D::forward(const ag::Variable& x) {
  check_input(x.shape());
  return depthwise_conv2d(x, kernel, bias, options_);
}

I DepthwiseConv2D::macs(const Shape&, const Shape& out) const { return out.numel() * kh_ * kw_; }

SeparableConv2D::SeparableConv2D(const SeparableConv2DOpts& o)
    : KerasLayer(Common{"SeparableConv2D", o.in_channels, o.kernel_size, o.strides, o.dilation_rate,
                        o.padding, o.data_format, o.dtype}),
      options_(o) {
  require(o.depth_multiplier > 0,
          "SeparableConv2D: Invalid value for argument `depth_multiplier`. Expected a strictly "
          "positive value. Received depth_multiplier={}.",
          o.depth_multiplier);
  require(o.filters > 0,
          "SeparableConv2D: Invalid value for argument `filters`. Expected a strictly positive "
          "value. Received filters={}.",
          o.filters);
  if (o.in_channels > 0)
    build_channels(o.in_channels, fmt::format("in_channels={}", o.in_channels));
}

void SeparableConv2D::create_weights(I in) {
  const I mid = in * options_.depth_multiplier;
  depthwise_kernel = register_parameter("depthwise_kernel",
                                        glorot_uniform({kh_, kw_, in, options_.depth_multiplier}));
  pointwise_kernel =
      register_parameter("pointwise_kernel", glorot_uniform({1, 1, mid, options_.filters}));
  if (options_.use_bias) bias = register_parameter("bias", zeros(options_.filters));
}

I SeparableConv2D::out_channels(I) const { return options_.filters; }

ag::Variable SeparableConv2D::forward(const ag::Variable& x) {
  check_input(x.shape());
  return separable_conv2d(x, depthwise_kernel, pointwise_kernel, bias, options_);
}

I SeparableConv2D::macs(const Shape&, const Shape& out) const {
  const I mid = in_channels() * options_.depth_multiplier;
  const I positions = out.numel() / options_.filters;  // N * oh * ow
  return positions * mid * (kh_ * kw_ + options_.filters);
}

Conv2D::Conv2D(const Conv2DOpts& o)
    : KerasLayer(Common{"Conv2D", o.in_channels, o.kernel_size, o.strides, o.dilation_rate,
                        o.padding, o.data_format, o.dtype}),
      options_(o) {
  require(o.filters > 0,
          "Conv2D: Invalid value for argument `filters`. Expected a strictly positive value. "
          "Received filters={}.",
          o.filters);
  require(o.groups > 0,
          "Conv2D: The number of groups must be a positive integer. Received: groups={}.",
          o.groups);
  require(o.filters % o.groups == 0,
          "Conv2D: The number of filters must be evenly divisible by the number of groups. "
          "Received: groups={}, filters={}.",
          o.groups, o.filters);
  const Geo geo = detail::parse_geo("Conv2D", o.kernel_size, o.strides, o.dilation_rate, o.padding,
                                    o.data_format);
  require(std::max(geo.strides[0], geo.strides[1]) == 1 ||
              std::max(geo.dilation[0], geo.dilation[1]) == 1,
          "Conv2D: `strides > 1` not supported in conjunction with `dilation_rate > 1`. "
          "Received: strides=({}, {}) and dilation_rate=({}, {})",
          geo.strides[0], geo.strides[1], geo.dilation[0], geo.dilation[1]);
  if (o.in_channels > 0)
    build_channels(o.in_channels, fmt::format("in_channels={}", o.in_channels));
}

void Conv2D::create_weights(I in) {
  require(in % options_.groups == 0,
          "Conv2D: The number of input channels must be evenly divisible by the number of "
          "groups. Received groups={}, but the input has {} channels.",
          options_.groups, in);
  kernel = register_parameter("kernel",
                              glorot_uniform({kh_, kw_, in / options_.groups, options_.filters}));
  if (options_.use_bias) bias = register_parameter("bias", zeros(options_.filters));
}

I Conv2D::out_channels(I) const { return options_.filters; }

ag::Variable Conv2D::forward(const ag::Variable& x) {
  check_input(x.shape());
  return conv2d(x, kernel, bias, options_);
}

I Conv2D::macs(const Shape&, const Shape& out) const {
  return out.numel() * kh_ * kw_ * (in_channels() / options_.groups);
}

}  // namespace convkit::nn::keras
