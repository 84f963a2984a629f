// Convolution layers: they own weight and bias, validate their options once, call ag::conv*.
#include "convkit/nn/conv.hpp"

#include <fmt/format.h>

#include "convkit/autograd/functional.hpp"
#include "convkit/nn/prune.hpp"
#include "convkit/ops/conv_sparse.hpp"
#include "core/check.hpp"
#include "nn/init.hpp"

namespace convkit::nn {

using convkit::detail::require;

namespace {

/// Checks a size list: one value or one per spatial dimension, each >= min_value.
void check_sizes(const std::string& layer, const char* what, const Ints& sizes, int ndims,
                 std::int64_t min_value) {
  const auto n = static_cast<int>(sizes.v.size());
  require(n == 1 || n == ndims, "{}: {} needs 1 or {} values, got {}", layer, what, ndims, n);
  for (std::int64_t s : sizes.v)
    require(s >= min_value, "{}: {} must be >= {}, got {}", layer, what, min_value,
            fmt::join(sizes.v, ", "));
}

std::int64_t size_at(const Ints& sizes, int d) {
  return sizes.v.size() == 1 ? sizes.v[0] : sizes.v[static_cast<std::size_t>(d)];
}

/// Every check of the layer options in one place; ConvProblem checks the rest per input.
void validate(const std::string& layer, int ndims, bool transposed, const ConvOpts& o) {
  require(o.in > 0, "{}: in must be > 0, got {}", layer, o.in);
  require(o.out > 0, "{}: out must be > 0, got {}", layer, o.out);
  require(o.groups > 0, "{}: groups must be > 0, got {}", layer, o.groups);
  require(o.in % o.groups == 0, "{}: in {} is not divisible by groups {}", layer, o.in, o.groups);
  require(o.out % o.groups == 0, "{}: out {} is not divisible by groups {}", layer, o.out,
          o.groups);
  check_sizes(layer, "kernel", o.kernel, ndims, 1);
  check_sizes(layer, "stride", o.stride, ndims, 1);
  check_sizes(layer, "dilation", o.dilation, ndims, 1);
  check_sizes(layer, "output_padding", o.output_padding, ndims, 0);
  if (transposed) {
    require(o.padding_mode == PaddingMode::Zeros,
            "{}: only zeros padding_mode is supported for transposed convolutions", layer);
    require(o.padding.kind == Padding::Kind::Explicit,
            "{}: padding 'same'/'valid' is not supported for transposed convolutions", layer);
  } else {
    for (std::int64_t p : o.output_padding.v)
      require(p == 0, "{}: output_padding applies to transposed convolutions only, got {}", layer,
              p);
  }
}

}  // namespace

ConvNd::ConvNd(int ndims, bool transposed, const ConvOpts& options)
    : type_name_(fmt::format("{}{}d", transposed ? "ConvTranspose" : "Conv", ndims)),
      ndims_(ndims),
      transposed_(transposed),
      options_(options) {
  validate(type_name_, ndims, transposed, options_);
  const ConvOpts& o = options_;
  std::vector<std::int64_t> wshape = transposed ? std::vector<std::int64_t>{o.in, o.out / o.groups}
                                                : std::vector<std::int64_t>{o.out, o.in / o.groups};
  std::int64_t receptive = 1;
  for (int d = 0; d < ndims; ++d) {
    wshape.push_back(size_at(o.kernel, d));
    receptive *= size_at(o.kernel, d);
  }
  const std::int64_t fan_in = wshape[1] * receptive;  // torch's _calculate_fan_in_and_fan_out
  weight = register_parameter("weight", init::default_uniform(Shape(wshape), fan_in));
  if (o.bias) bias = register_parameter("bias", init::default_uniform(Shape{o.out}, fan_in));
}

std::string ConvNd::type_name() const { return type_name_; }

ConvOptions ConvNd::conv_options() const {
  return ConvOptions{.stride = options_.stride.v,
                     .padding = options_.padding,
                     .dilation = options_.dilation.v,
                     .groups = options_.groups,
                     .padding_mode = options_.padding_mode,
                     .output_padding = options_.output_padding.v};
}

std::vector<std::string> ConvNd::transformable_params() const {
  if (bias.defined()) return {"weight", "bias"};
  return {"weight"};
}

ag::Variable ConvNd::forward(const ag::Variable& x) {
  const ConvOptions o = conv_options();
  // The weight and bias in use: masked when pruned, constrained when parametrized.
  const ag::Variable w = param("weight"), b = param("bias");
  if (ag::Variable y = sparse_forward(x, w, b, o); y.defined()) return y;
  if (transposed_) {
    if (ndims_ == 1) return ag::conv_transpose1d(x, w, b, o);
    if (ndims_ == 2) return ag::conv_transpose2d(x, w, b, o);
    return ag::conv_transpose3d(x, w, b, o);
  }
  if (ndims_ == 1) return ag::conv1d(x, w, b, o);
  if (ndims_ == 2) return ag::conv2d(x, w, b, o);
  return ag::conv3d(x, w, b, o);
}

ag::Variable ConvNd::sparse_forward(const ag::Variable& x, const ag::Variable& w,
                                   const ag::Variable& b, const ConvOptions& o) const {
  // Only inference (nothing would record a gradient) of a pruned direct float32 convolution
  // with zero padding whose weight is sparse enough to pay (bench/results/sparse_conv.md).
  const bool records = ag::grad_enabled() && (x.requires_grad() || w.requires_grad() ||
                                              (b.defined() && b.requires_grad()));
  if (transposed_ || records || !prune::sparse_inference() || !prune::is_pruned(*this, "weight") ||
      !x.defined() || x.dtype() != DType::F32 || w.dtype() != DType::F32 ||
      o.padding_mode != PaddingMode::Zeros || x.dim() != ndims_ + 2)
    return {};
  const Tensor tb = b.defined() ? b.value() : Tensor();
  ConvProblem p;
  SparseConvWeights packed;
  try {
    p = ConvProblem::make(x.value(), w.value(), tb, o, false);
    packed = pack_sparse_weights(p, w.value());
  } catch (const InvalidArgument&) {
    return {};  // the dense path runs it, or reports the problem under the layer's own name
  }
  if (packed.sparsity() <= prune::sparse_inference_threshold()) return {};
  return ag::Variable(conv_forward_sparse(p, x.value(), packed, tb));
}

std::int64_t ConvNd::macs(const Shape& in, const Shape&) const {
  return ConvProblem::make(in, weight.shape(),
                           bias.defined() ? std::optional<Shape>(bias.shape()) : std::nullopt,
                           conv_options(), transposed_)
      .macs();
}

std::optional<Geometry> ConvNd::geometry(const Shape&) const {
  Geometry g;
  g.transposed = transposed_;
  for (int d = 0; d < ndims_; ++d) {
    g.kernel.push_back(size_at(options_.kernel, d));
    g.stride.push_back(size_at(options_.stride, d));
    g.dilation.push_back(size_at(options_.dilation, d));
  }
  return g;
}

DepthwiseConv2d::DepthwiseConv2d(const DepthwiseOpts& o)
    : ConvNd(2, false,
             ConvOpts{.in = o.channels,
                      .out = o.channels * o.multiplier,
                      .kernel = o.kernel,
                      .stride = o.stride,
                      .padding = o.padding,
                      .dilation = o.dilation,
                      .groups = o.channels,
                      .bias = o.bias,
                      .padding_mode = o.padding_mode}) {
  require(o.multiplier > 0, "DepthwiseConv2d: multiplier must be > 0, got {}", o.multiplier);
  type_name_ = "DepthwiseConv2d";
}

PointwiseConv2d::PointwiseConv2d(std::int64_t in, std::int64_t out, bool with_bias)
    : ConvNd(2, false, ConvOpts{.in = in, .out = out, .kernel = 1, .bias = with_bias}) {
  type_name_ = "PointwiseConv2d";
}

SeparableConv2d::SeparableConv2d(const SeparableOpts& o) {
  require(o.kernels_per_layer > 0, "SeparableConv2d: kernels_per_layer must be > 0, got {}",
          o.kernels_per_layer);
  const std::int64_t mid = o.in * o.kernels_per_layer;
  depthwise = register_module("depthwise",
                              std::make_shared<Conv2d>(ConvOpts{.in = o.in,
                                                                .out = mid,
                                                                .kernel = o.kernel,
                                                                .stride = o.stride,
                                                                .padding = o.padding,
                                                                .dilation = o.dilation,
                                                                .groups = o.in,
                                                                .bias = o.bias,
                                                                .padding_mode = o.padding_mode}));
  pointwise = register_module(
      "pointwise", std::make_shared<Conv2d>(ConvOpts{.in = mid, .out = o.out, .bias = o.bias}));
}

ag::Variable SeparableConv2d::forward(const ag::Variable& x) {
  return (*pointwise)((*depthwise)(x));
}

SpatiallySeparableConv2d::SpatiallySeparableConv2d(const SpatiallySeparableOpts& o) {
  const char* who = "SpatiallySeparableConv2d";
  require(o.kernel > 0, "{}: kernel must be > 0, got {}", who, o.kernel);
  require(o.stride > 0, "{}: stride must be > 0, got {}", who, o.stride);
  require(o.dilation > 0, "{}: dilation must be > 0, got {}", who, o.dilation);
  require(o.padding >= -1, "{}: padding must be >= 0 (or -1 for 'same'), got {}", who, o.padding);
  const bool same = o.padding < 0;
  vertical = register_module("0", std::make_shared<Conv2d>(ConvOpts{
                                      .in = o.in,
                                      .out = o.out,
                                      .kernel = {o.kernel, 1},
                                      .stride = {o.stride, 1},
                                      .padding = same ? Padding::same() : Padding{o.padding, 0},
                                      .dilation = {o.dilation, 1},
                                      .bias = o.bias}));
  horizontal = register_module("1", std::make_shared<Conv2d>(ConvOpts{
                                        .in = o.out,
                                        .out = o.out,
                                        .kernel = {1, o.kernel},
                                        .stride = {1, o.stride},
                                        .padding = same ? Padding::same() : Padding{0, o.padding},
                                        .dilation = {1, o.dilation},
                                        .bias = o.bias}));
}

SpatiallySeparableConv2d::SpatiallySeparableConv2d(std::int64_t in, std::int64_t out,
                                                   std::int64_t k, bool bias)
    : SpatiallySeparableConv2d(
          SpatiallySeparableOpts{.in = in, .out = out, .kernel = k, .bias = bias}) {}

ag::Variable SpatiallySeparableConv2d::forward(const ag::Variable& x) {
  return (*horizontal)((*vertical)(x));
}

ChannelScale::ChannelScale(std::int64_t channels, bool with_bias) : channels_(channels) {
  require(channels > 0, "ChannelScale: channels must be > 0, got {}", channels);
  weight = register_parameter("weight", Tensor::ones({channels, 1, 1, 1}));
  if (with_bias) bias = register_parameter("bias", Tensor::zeros({channels}));
}

ag::Variable ChannelScale::forward(const ag::Variable& x) {
  require(x.dim() >= 2 && x.size(1) == channels_,
          "ChannelScale: input must be (N, {}, ...), got {}", channels_, x.shape());
  std::vector<std::int64_t> bshape(static_cast<std::size_t>(x.dim()), 1);
  bshape[1] = channels_;
  ag::Variable y = ag::mul(x, ag::reshape(param("weight"), bshape));
  if (bias.defined()) y = ag::add(y, ag::reshape(param("bias"), bshape));
  return y;
}

std::vector<std::string> ChannelScale::transformable_params() const {
  if (bias.defined()) return {"weight", "bias"};
  return {"weight"};
}

std::int64_t ChannelScale::macs(const Shape&, const Shape& out) const { return out.numel(); }

}  // namespace convkit::nn
