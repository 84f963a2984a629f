// Convolution layers: Conv1d/2d/3d, ConvTranspose1d/2d/3d and the efficient-network variants.
#pragma once

#include <memory>

#include "convkit/nn/module.hpp"
#include "convkit/ops/conv_problem.hpp"

namespace convkit::nn {

/// Options of Conv*d and ConvTranspose*d, named as in PyTorch. Size lists hold one value
/// (every spatial dimension) or one per dimension.
///   nn::Conv2d({.in = 32, .out = 32, .kernel = 3, .padding = 1, .groups = 32})
struct ConvOpts {
  std::int64_t in = 0;   // input channels
  std::int64_t out = 0;  // output channels
  Ints kernel = 1;
  Ints stride = 1;
  Padding padding{};  // int, per-dim list, Padding::same(), Padding::valid(), asymmetric
  Ints dilation = 1;
  std::int64_t groups = 1;
  bool bias = true;
  PaddingMode padding_mode = PaddingMode::Zeros;  // direct convolutions only
  Ints output_padding = 0;                        // transposed convolutions only
};

/// A direct or transposed convolution with `ndims` spatial dimensions. Parameters:
///   direct:     weight (out, in/groups, k...), bias (out)
///   transposed: weight (in, out/groups, k...), bias (out)
/// initialized like PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both (kaiming_uniform with
/// a = sqrt(5)), fan_in = weight.size(1) * prod(kernel).
/// Output size, direct: floor((in + pad_before + pad_after - dilation*(k-1) - 1)/stride) + 1;
/// transposed: (in-1)*stride - pad_before - pad_after + dilation*(k-1) + output_padding + 1.
class ConvNd : public Module {
 public:
  ConvNd(int ndims, bool transposed, const ConvOpts& options);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override;
  std::int64_t macs(const Shape& in, const Shape& out) const override;
  /// kernel, stride and dilation per spatial dimension; transposed for ConvTranspose*d.
  std::optional<Geometry> geometry(const Shape& in) const override;
  /// weight and bias (when there is one) can be pruned or parametrized.
  std::vector<std::string> transformable_params() const override;

  const ConvOpts& options() const { return options_; }
  int ndims() const { return ndims_; }
  bool transposed() const { return transposed_; }
  /// The functional options forward passes to ag::conv*d.
  ConvOptions conv_options() const;
  ag::Variable weight, bias;  // bias undefined when options.bias is false

 protected:
  std::string type_name_;

 private:
  // The inference forward of a sparse enough pruned layer through conv_forward_sparse; an
  // undefined Variable when that path does not apply.
  ag::Variable sparse_forward(const ag::Variable& x, const ag::Variable& w, const ag::Variable& b,
                              const ConvOptions& o) const;
  int ndims_;
  bool transposed_;
  ConvOpts options_;
};

struct Conv1d : ConvNd {
  explicit Conv1d(const ConvOpts& o) : ConvNd(1, false, o) {}
};
struct Conv2d : ConvNd {
  explicit Conv2d(const ConvOpts& o) : ConvNd(2, false, o) {}
};
struct Conv3d : ConvNd {
  explicit Conv3d(const ConvOpts& o) : ConvNd(3, false, o) {}
};
struct ConvTranspose1d : ConvNd {
  explicit ConvTranspose1d(const ConvOpts& o) : ConvNd(1, true, o) {}
};
struct ConvTranspose2d : ConvNd {
  explicit ConvTranspose2d(const ConvOpts& o) : ConvNd(2, true, o) {}
};
struct ConvTranspose3d : ConvNd {
  explicit ConvTranspose3d(const ConvOpts& o) : ConvNd(3, true, o) {}
};

/// Options of a depthwise convolution: each of `channels` input channels gets `multiplier`
/// kernels; output channel c*multiplier + m is channel c's m-th kernel (PyTorch's
/// Conv2d(channels, channels*multiplier, groups=channels); Keras' DepthwiseConv2D).
struct DepthwiseOpts {
  std::int64_t channels = 0;
  std::int64_t multiplier = 1;
  Ints kernel = 3;
  Ints stride = 1;
  Padding padding = 1;
  Ints dilation = 1;
  bool bias = true;
  PaddingMode padding_mode = PaddingMode::Zeros;
};
/// Depthwise 2-D convolution; state_dict keys weight (channels*multiplier, 1, kh, kw), bias.
class DepthwiseConv2d : public ConvNd {
 public:
  explicit DepthwiseConv2d(const DepthwiseOpts& options);
};

/// Pointwise (1x1) convolution: Conv2d(in, out, kernel 1).
class PointwiseConv2d : public ConvNd {
 public:
  PointwiseConv2d(std::int64_t in, std::int64_t out, bool with_bias = true);
};

/// Options of a depthwise-separable convolution.
struct SeparableOpts {
  std::int64_t in = 0, out = 0;
  std::int64_t kernels_per_layer = 1;  // depthwise multiplier
  Ints kernel = 3;
  Ints stride = 1;
  Padding padding = 1;
  Ints dilation = 1;
  bool bias = true;  // for both convolutions
  PaddingMode padding_mode = PaddingMode::Zeros;
};
/// Depthwise then pointwise, as children named like the usual PyTorch module:
///   depthwise = Conv2d(in, in*kernels_per_layer, kernel, groups=in)
///   pointwise = Conv2d(in*kernels_per_layer, out, 1)
/// keys depthwise.weight, depthwise.bias, pointwise.weight, pointwise.bias.
class SeparableConv2d : public Module {
 public:
  explicit SeparableConv2d(const SeparableOpts& options);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "SeparableConv2d"; }
  std::shared_ptr<Conv2d> depthwise, pointwise;
};

/// Options of a spatially separable convolution (a k x k kernel factored in two).
struct SpatiallySeparableOpts {
  std::int64_t in = 0, out = 0;
  std::int64_t kernel = 3;
  std::int64_t stride = 1;
  /// -1: 'same' (the output keeps the input's size at stride 1, even kernels padding one
  /// more after than before, like PyTorch's padding='same'); otherwise zeros on both sides.
  std::int64_t padding = -1;
  std::int64_t dilation = 1;
  bool bias = true;  // for both convolutions
};
/// A k x k convolution factored into a (k, 1) convolution in -> out (stride, padding and
/// dilation along the height) then a (1, k) convolution out -> out (the same along the
/// width); children "0" and "1", like a PyTorch Sequential of the two:
///   nn.Sequential(nn.Conv2d(in, out, (k, 1), (s, 1), (p, 0), (d, 1)),
///                 nn.Conv2d(out, out, (1, k), (1, s), (0, p), (1, d)))
/// k*(in + out)*out weights instead of k*k*in*out.
class SpatiallySeparableConv2d : public Module {
 public:
  explicit SpatiallySeparableConv2d(const SpatiallySeparableOpts& options);
  /// The 'same'-padded form at stride 1: SpatiallySeparableConv2d({in, out, k, .bias = bias}).
  SpatiallySeparableConv2d(std::int64_t in, std::int64_t out, std::int64_t k, bool bias = true);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "SpatiallySeparableConv2d"; }
  std::shared_ptr<Conv2d> vertical, horizontal;
};

/// The "depthwise constant" layer: y[n, c] = weight[c] * x[n, c] (+ bias[c]). The weight is
/// stored as (C, 1, 1, 1) so the state_dict equals PyTorch's Conv2d(C, C, 1, groups=C,
/// bias=...) and loads from it; initialized to ones (identity) and the bias to zeros.
class ChannelScale : public Module {
 public:
  explicit ChannelScale(std::int64_t channels, bool bias = false);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "ChannelScale"; }
  std::int64_t macs(const Shape& in, const Shape& out) const override;
  std::vector<std::string> transformable_params() const override;
  ag::Variable weight, bias;

 private:
  std::int64_t channels_;
};

}  // namespace convkit::nn
