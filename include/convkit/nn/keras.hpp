// Keras-compatible convolution layers (Keras layouts, names, defaults) and Keras <-> PyTorch
// kernel layout conversions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "convkit/nn/conv.hpp"
#include "convkit/nn/module.hpp"

namespace convkit::nn::keras {

// ---- options: Keras' argument names and defaults --------------------------------------------
// kernel_size, strides and dilation_rate take one value (both dimensions) or {h, w}.
// padding is "valid" or "same" (any case); data_format "channels_last" (N, H, W, C) or
// "channels_first" (N, C, H, W). in_channels > 0 builds the weights at construction;
// 0 leaves the layer unbuilt until build(input_shape). dtype: F32 or F64 (Keras' dtype).

/// keras.layers.DepthwiseConv2D
struct DepthwiseConv2DOpts {
  std::int64_t in_channels = 0;
  Ints kernel_size = 0;  // required, like Keras
  Ints strides = 1;
  std::string padding = "valid";
  std::int64_t depth_multiplier = 1;
  std::string data_format = "channels_last";
  Ints dilation_rate = 1;
  bool use_bias = true;
  DType dtype = DType::F32;
};

/// keras.layers.SeparableConv2D
struct SeparableConv2DOpts {
  std::int64_t in_channels = 0;
  std::int64_t filters = 0;  // required
  Ints kernel_size = 0;      // required
  Ints strides = 1;
  std::string padding = "valid";
  std::string data_format = "channels_last";
  Ints dilation_rate = 1;
  std::int64_t depth_multiplier = 1;
  bool use_bias = true;
  DType dtype = DType::F32;
};

/// keras.layers.Conv2D
struct Conv2DOpts {
  std::int64_t in_channels = 0;
  std::int64_t filters = 0;  // required
  Ints kernel_size = 0;      // required
  Ints strides = 1;
  std::string padding = "valid";
  std::string data_format = "channels_last";
  Ints dilation_rate = 1;
  std::int64_t groups = 1;
  bool use_bias = true;
  DType dtype = DType::F32;
};

// ---- functional forms (what the layers call; every argument differentiable) -----------------
// Output size per spatial dimension (Keras' compute_conv_output_shape):
//   "valid": floor((in - dilation*(k-1) - 1) / stride) + 1
//   "same":  ceil(in / stride), padding total = max((out-1)*stride + dilation*(k-1) + 1 - in, 0),
//            before = total/2 and the extra row/column after (TensorFlow's rule).
// A channels_last input is read in place as a channels-last (N, C, H, W) tensor and the
// output is returned (N, oh, ow, out) without a copy. The options' in_channels is ignored
// (the kernel says it).

/// Keras' DepthwiseConv2D: kernel (kh, kw, in, multiplier), bias (in*multiplier) or undefined;
/// output channel c*multiplier + m is input channel c through kernel[:, :, c, m].
ag::Variable depthwise_conv2d(const ag::Variable& x, const ag::Variable& kernel,
                              const ag::Variable& bias, const DepthwiseConv2DOpts& options);
/// Keras' SeparableConv2D: the depthwise convolution (strides, padding, dilation; no bias) then
/// a 1x1 convolution with pointwise_kernel (1, 1, in*multiplier, filters) and bias (filters).
ag::Variable separable_conv2d(const ag::Variable& x, const ag::Variable& depthwise_kernel,
                              const ag::Variable& pointwise_kernel, const ag::Variable& bias,
                              const SeparableConv2DOpts& options);
/// Keras' Conv2D: kernel (kh, kw, in/groups, filters), bias (filters); output channel o belongs
/// to group o / (filters/groups), like PyTorch.
ag::Variable conv2d(const ag::Variable& x, const ag::Variable& kernel, const ag::Variable& bias,
                    const Conv2DOpts& options);

// ---- layers ---------------------------------------------------------------------------------
/// What the three layers share: building, Keras' count_params, get_weights/set_weights.
class KerasLayer : public Module {
 public:
  /// Creates the weights for an input of this shape (batch included; the channel axis is the
  /// last for channels_last, axis 1 for channels_first), like Keras' layer.build. Building a
  /// built layer again is a no-op when the channel count agrees, an error otherwise.
  void build(const Shape& input_shape);
  bool built() const { return in_channels_ > 0; }
  std::int64_t in_channels() const { return in_channels_; }
  /// layer.compute_output_shape: (N, oh, ow, out) or (N, out, oh, ow).
  Shape compute_output_shape(const Shape& input_shape) const;
  /// layer.count_params(): every weight's element count; throws when not built.
  std::int64_t count_params() const;
  /// The weights in Keras' get_weights() order and layouts (copies).
  std::vector<Tensor> get_weights() const;
  /// Copies Keras-ordered weights in (shapes checked, dtype converted), like set_weights.
  void set_weights(const std::vector<Tensor>& weights);
  std::optional<Geometry> geometry(const Shape& in) const override;
  std::string type_name() const override { return type_; }

 protected:
  struct Common {
    std::string type;
    std::int64_t in_channels;
    Ints kernel_size, strides, dilation_rate;
    std::string padding, data_format;
    DType dtype;
  };
  explicit KerasLayer(const Common& common);
  /// Builds for `in_channels` inputs (the constructors call it when options.in_channels > 0;
  /// `shape` names the input shape in messages).
  void build_channels(std::int64_t in_channels, const std::string& shape);
  /// Registers the weights once the input channel count is known (after checking it).
  virtual void create_weights(std::int64_t in_channels) = 0;
  /// Output channels for `in_channels` inputs.
  virtual std::int64_t out_channels(std::int64_t in_channels) const = 0;
  /// The input channels of x after checking its rank and (when built) its channel axis.
  std::int64_t check_input(const Shape& x) const;
  /// Uniform(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)), Keras' compute_fans.
  Tensor glorot_uniform(const Shape& shape) const;
  /// Zeros of the layer's dtype.
  Tensor zeros(std::int64_t n) const;

  std::string type_;
  std::int64_t kh_ = 1, kw_ = 1;
  bool channels_last_ = true;
  DType dtype_ = DType::F32;

 private:
  std::int64_t in_channels_ = 0;
  Common common_;
};

/// keras.layers.DepthwiseConv2D. Weights (Keras 3 names): "kernel" (kh, kw, in, multiplier),
/// "bias" (in*multiplier); glorot_uniform with fan_in = kh*kw*in, fan_out = kh*kw*multiplier;
/// zero bias.
///   keras::DepthwiseConv2D dw({.in_channels = 3, .kernel_size = 3, .use_bias = false});
///   dw.count_params();                                   // 27, as Keras
///   ag::Variable y = dw(x);                              // x (N, H, W, 3) -> (N, H-2, W-2, 3)
class DepthwiseConv2D : public KerasLayer {
 public:
  explicit DepthwiseConv2D(const DepthwiseConv2DOpts& options);
  ag::Variable forward(const ag::Variable& x) override;
  std::int64_t macs(const Shape& in, const Shape& out) const override;
  const DepthwiseConv2DOpts& options() const { return options_; }
  ag::Variable kernel, bias;  // undefined until built; bias undefined without use_bias

 private:
  void create_weights(std::int64_t in_channels) override;
  std::int64_t out_channels(std::int64_t in) const override;
  DepthwiseConv2DOpts options_;
};

/// keras.layers.SeparableConv2D. Weights "depthwise_kernel" (kh, kw, in, multiplier),
/// "pointwise_kernel" (1, 1, in*multiplier, filters), "bias" (filters): one bias, after the
/// pointwise convolution. Both kernels glorot_uniform on their own shapes.
///   keras::SeparableConv2D sep({.in_channels = 64, .filters = 128, .kernel_size = 3});
///   sep.count_params();                 // 64*9 + 64*128 + 128 = 8,896
class SeparableConv2D : public KerasLayer {
 public:
  explicit SeparableConv2D(const SeparableConv2DOpts& options);
  ag::Variable forward(const ag::Variable& x) override;
  std::int64_t macs(const Shape& in, const Shape& out) const override;
  const SeparableConv2DOpts& options() const { return options_; }
  ag::Variable depthwise_kernel, pointwise_kernel, bias;

 private:
  void create_weights(std::int64_t in_channels) override;
  std::int64_t out_channels(std::int64_t in) const override;
  SeparableConv2DOpts options_;
};

/// keras.layers.Conv2D. Weights "kernel" (kh, kw, in/groups, filters), "bias" (filters);
/// glorot_uniform with fan_in = kh*kw*in/groups, fan_out = kh*kw*filters.
///   keras::Conv2D conv({.in_channels = 32, .filters = 64, .kernel_size = 3, .groups = 4});
class Conv2D : public KerasLayer {
 public:
  explicit Conv2D(const Conv2DOpts& options);
  ag::Variable forward(const ag::Variable& x) override;
  std::int64_t macs(const Shape& in, const Shape& out) const override;
  const Conv2DOpts& options() const { return options_; }
  ag::Variable kernel, bias;

 private:
  void create_weights(std::int64_t in_channels) override;
  std::int64_t out_channels(std::int64_t in) const override;
  Conv2DOpts options_;
};

// ---- kernel layouts: Keras <-> PyTorch (new contiguous tensors, any float dtype) ------------

/// Conv2D kernel (kh, kw, in/groups, out) -> PyTorch Conv2d weight (out, in/groups, kh, kw):
/// weight[o, i, y, x] = kernel[y, x, i, o].
Tensor conv_kernel_to_torch(const Tensor& kernel);
/// PyTorch (out, in/groups, kh, kw) -> Keras (kh, kw, in/groups, out).
Tensor conv_kernel_from_torch(const Tensor& weight);
/// DepthwiseConv2D kernel (kh, kw, in, multiplier) -> PyTorch (in*multiplier, 1, kh, kw):
/// weight[c*multiplier + m, 0, y, x] = kernel[y, x, c, m].
Tensor depthwise_kernel_to_torch(const Tensor& kernel);
/// PyTorch (in*multiplier, 1, kh, kw) -> Keras (kh, kw, in, multiplier); the multiplier must
/// divide dimension 0.
Tensor depthwise_kernel_from_torch(const Tensor& weight, std::int64_t depth_multiplier);
/// Pointwise kernel (1, 1, in, out) -> PyTorch (out, in, 1, 1).
Tensor pointwise_kernel_to_torch(const Tensor& kernel);
/// PyTorch (out, in, 1, 1) -> Keras (1, 1, in, out).
Tensor pointwise_kernel_from_torch(const Tensor& weight);

// ---- Keras get_weights() lists <-> the PyTorch-named modules of convkit/nn/conv.hpp ----------
// Loading checks every shape before changing anything. A list without a bias (use_bias=False)
// zeroes the module's bias; a bias for a module built without one is an error.

/// Conv2D [kernel, (bias)] into a 2-D nn::Conv2d (any groups).
void load_keras_conv2d(ConvNd& conv, const std::vector<Tensor>& weights);
/// DepthwiseConv2D [kernel, (bias)] into nn::DepthwiseConv2d (or any Conv2d with
/// groups == in and out a multiple of in).
void load_keras_depthwise(ConvNd& conv, const std::vector<Tensor>& weights);
/// SeparableConv2D [depthwise_kernel, pointwise_kernel, (bias)] into nn::SeparableConv2d:
/// the Keras bias goes to pointwise.bias, depthwise.bias becomes zero.
void load_keras_separable(SeparableConv2d& sep, const std::vector<Tensor>& weights);
/// The Keras lists of the same modules (with the bias when the module has one).
std::vector<Tensor> keras_conv2d_weights(const ConvNd& conv);
std::vector<Tensor> keras_depthwise_weights(const ConvNd& conv);
/// Keras has one bias after the pointwise convolution; the depthwise bias folds into it
/// exactly: bias = pointwise.bias + W_pointwise * depthwise.bias.
std::vector<Tensor> keras_separable_weights(const SeparableConv2d& sep);

}  // namespace convkit::nn::keras
