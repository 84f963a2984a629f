// Keras <-> PyTorch kernel layouts, and Keras get_weights() lists into and out of the
// PyTorch-named convolution modules.
#include <fmt/format.h>

#include "convkit/nn/keras.hpp"
#include "core/check.hpp"
#include "nn/keras_common.hpp"

namespace convkit::nn::keras {

using convkit::detail::require;
using detail::I;
using detail::shape_str;

namespace {

// A contiguous copy of t with dimensions taken in `dims` order.
Tensor permute_copy(const Tensor& t, const std::vector<int>& dims) {
  Shape shape = t.shape(), strides = t.strides();
  for (std::size_t i = 0; i < dims.size(); ++i) {
    shape[static_cast<int>(i)] = t.size(dims[i]);
    strides[static_cast<int>(i)] = t.stride(dims[i]);
  }
  return Tensor::from_storage(t.storage(), t.dtype(), shape, strides, t.offset())
      .clone(MemoryFormat::Contiguous);
}

void require_rank4(const Tensor& t, const char* fn, const char* what, const char* layout) {
  require(t.defined(), "{}: {} is undefined", fn, what);
  require(t.dim() == 4, "{}: {} must have rank 4 {}, got shape {}", fn, what, layout,
          shape_str(t.shape()));
}

// The module's weight and bias, shape-checked, for a 2-D direct convolution.
void require_conv2d(const ConvNd& conv, const char* fn) {
  require(conv.weight.defined() && conv.weight.dim() == 4,
          "{}: the module must be a 2-D convolution, got {} with weight {}", fn, conv.type_name(),
          conv.weight.defined() ? shape_str(conv.weight.shape()) : "-");
}

// Copies kernel (converted) and bias into a module after checking both shapes.
void load_into(ConvNd& conv, const Tensor& weight, const std::vector<Tensor>& w, const char* fn,
               const char* keras_layer) {
  require(weight.shape() == conv.weight.shape(),
          "{}: the {} kernel {} gives a PyTorch weight {} but the module's {} weight is {}", fn,
          keras_layer, shape_str(w[0].shape()), shape_str(weight.shape()), conv.type_name(),
          shape_str(conv.weight.shape()));
  if (w.size() == 2) {
    require(conv.bias.defined(),
            "{}: the {} weights include a bias but the module was built without one", fn,
            keras_layer);
    require(w[1].defined() && w[1].shape() == conv.bias.shape(),
            "{}: bias must have shape {}, got {}", fn, shape_str(conv.bias.shape()),
            w[1].defined() ? shape_str(w[1].shape()) : "-");
  }
  conv.weight.set_value(weight.to(conv.weight.dtype()));
  if (conv.bias.defined())
    conv.bias.set_value(w.size() == 2 ? w[1].to(conv.bias.dtype())
                                      : Tensor::zeros(conv.bias.shape(), conv.bias.dtype()));
}

void require_count(const std::vector<Tensor>& w, std::size_t lo, std::size_t hi, const char* fn,
                   const char* order) {
  require(w.size() >= lo && w.size() <= hi, "{}: expected the Keras list {}, got {} tensors", fn,
          order, w.size());
}

}  // namespace

Tensor conv_kernel_to_torch(const Tensor& kernel) {
  require_rank4(kernel, "conv_kernel_to_torch", "the Keras kernel", "(kh, kw, in/groups, out)");
  return permute_copy(kernel, {3, 2, 0, 1});
}

Tensor conv_kernel_from_torch(const Tensor& weight) {
  require_rank4(weight, "conv_kernel_from_torch", "the PyTorch weight", "(out, in/groups, kh, kw)");
  return permute_copy(weight, {2, 3, 1, 0});
}

Tensor depthwise_kernel_to_torch(const Tensor& kernel) {
  require_rank4(kernel, "depthwise_kernel_to_torch", "the Keras depthwise kernel",
                "(kh, kw, in, depth_multiplier)");
  const Shape& s = kernel.shape();
  // (kh, kw, in, m) -> (kh, kw, in*m, 1): channel c*m + m' is where Keras keeps it already.
  return permute_copy(kernel.contiguous().reshape({s[0], s[1], s[2] * s[3], 1}), {2, 3, 0, 1});
}

Tensor depthwise_kernel_from_torch(const Tensor& weight, std::int64_t depth_multiplier) {
  const char* fn = "depthwise_kernel_from_torch";
  require_rank4(weight, fn, "the PyTorch weight", "(in*multiplier, 1, kh, kw)");
  require(weight.size(1) == 1,
          "{}: a depthwise PyTorch weight is (in*multiplier, 1, kh, kw), got shape {}", fn,
          shape_str(weight.shape()));
  require(depth_multiplier > 0 && weight.size(0) % depth_multiplier == 0,
          "{}: depth_multiplier {} must be > 0 and divide the {} output channels of weight {}", fn,
          depth_multiplier, weight.size(0), shape_str(weight.shape()));
  const Tensor k = permute_copy(weight, {2, 3, 0, 1});  // (kh, kw, in*m, 1)
  return k.reshape({k.size(0), k.size(1), weight.size(0) / depth_multiplier, depth_multiplier});
}

Tensor pointwise_kernel_to_torch(const Tensor& kernel) {
  require_rank4(kernel, "pointwise_kernel_to_torch", "the Keras pointwise kernel",
                "(1, 1, in, out)");
  require(kernel.size(0) == 1 && kernel.size(1) == 1,
          "pointwise_kernel_to_torch: a pointwise kernel is (1, 1, in, out), got shape {}",
          shape_str(kernel.shape()));
  return conv_kernel_to_torch(kernel);
}

Tensor pointwise_kernel_from_torch(const Tensor& weight) {
  require_rank4(weight, "pointwise_kernel_from_torch", "the PyTorch weight", "(out, in, 1, 1)");
  require(weight.size(2) == 1 && weight.size(3) == 1,
          "pointwise_kernel_from_torch: a pointwise weight is (out, in, 1, 1), got shape {}",
          shape_str(weight.shape()));
  return conv_kernel_from_torch(weight);
}

void load_keras_conv2d(ConvNd& conv, const std::vector<Tensor>& w) {
  const char* fn = "load_keras_conv2d";
  require_conv2d(conv, fn);
  require_count(w, 1, 2, fn, "[kernel, (bias)]");
  load_into(conv, conv_kernel_to_torch(w[0]), w, fn, "Conv2D");
}

void load_keras_depthwise(ConvNd& conv, const std::vector<Tensor>& w) {
  const char* fn = "load_keras_depthwise";
  require_conv2d(conv, fn);
  const ConvOpts& o = conv.options();
  require(o.groups == o.in && o.out % o.in == 0,
          "{}: the module is not depthwise (in {}, out {}, groups {}; need groups == in and "
          "out a multiple of in)",
          fn, o.in, o.out, o.groups);
  require_count(w, 1, 2, fn, "[kernel, (bias)]");
  load_into(conv, depthwise_kernel_to_torch(w[0]), w, fn, "DepthwiseConv2D");
}

void load_keras_separable(SeparableConv2d& sep, const std::vector<Tensor>& w) {
  const char* fn = "load_keras_separable";
  require_count(w, 2, 3, fn, "[depthwise_kernel, pointwise_kernel, (bias)]");
  const Tensor dw = depthwise_kernel_to_torch(w[0]), pw = pointwise_kernel_to_torch(w[1]);
  // Check everything before changing anything.
  require(dw.shape() == sep.depthwise->weight.shape(),
          "{}: depthwise_kernel {} gives a PyTorch weight {} but depthwise.weight is {}", fn,
          shape_str(w[0].shape()), shape_str(dw.shape()), shape_str(sep.depthwise->weight.shape()));
  std::vector<Tensor> pw_list{w[1]};
  if (w.size() == 3) pw_list.push_back(w[2]);
  require(pw.shape() == sep.pointwise->weight.shape(),
          "{}: pointwise_kernel {} gives a PyTorch weight {} but pointwise.weight is {}", fn,
          shape_str(w[1].shape()), shape_str(pw.shape()), shape_str(sep.pointwise->weight.shape()));
  require(w.size() == 2 || (sep.pointwise->bias.defined() && w[2].defined() &&
                            w[2].shape() == sep.pointwise->bias.shape()),
          "{}: bias {} does not fit the module (pointwise.bias {})", fn,
          w.size() == 3 && w[2].defined() ? shape_str(w[2].shape()) : "-",
          sep.pointwise->bias.defined() ? shape_str(sep.pointwise->bias.shape()) : "none");
  load_into(*sep.depthwise, dw, {w[0]}, fn, "SeparableConv2D");
  load_into(*sep.pointwise, pw, pw_list, fn, "SeparableConv2D");
}

std::vector<Tensor> keras_conv2d_weights(const ConvNd& conv) {
  require_conv2d(conv, "keras_conv2d_weights");
  std::vector<Tensor> out{conv_kernel_from_torch(conv.weight.value())};
  if (conv.bias.defined()) out.push_back(conv.bias.value().clone(MemoryFormat::Contiguous));
  return out;
}

std::vector<Tensor> keras_depthwise_weights(const ConvNd& conv) {
  const char* fn = "keras_depthwise_weights";
  require_conv2d(conv, fn);
  const ConvOpts& o = conv.options();
  require(o.groups == o.in && o.out % o.in == 0,
          "{}: the module is not depthwise (in {}, out {}, groups {})", fn, o.in, o.out, o.groups);
  std::vector<Tensor> out{depthwise_kernel_from_torch(conv.weight.value(), o.out / o.in)};
  if (conv.bias.defined()) out.push_back(conv.bias.value().clone(MemoryFormat::Contiguous));
  return out;
}

std::vector<Tensor> keras_separable_weights(const SeparableConv2d& sep) {
  const ConvNd& dw = *sep.depthwise;
  const ConvNd& pw = *sep.pointwise;
  std::vector<Tensor> out{keras_depthwise_weights(dw)[0], keras_conv2d_weights(pw)[0]};
  if (!dw.bias.defined() && !pw.bias.defined()) return out;
  // bias[o] = pointwise.bias[o] + sum_c W[o, c] * depthwise.bias[c], in double.
  const Tensor wp = pw.weight.value();
  const I n_out = wp.size(0), n_mid = wp.size(1);
  std::vector<double> b(static_cast<std::size_t>(n_out), 0.0);
  for (I o = 0; o < n_out; ++o) {
    double s = pw.bias.defined() ? pw.bias.value().get({o}) : 0.0;
    if (dw.bias.defined())
      for (I c = 0; c < n_mid; ++c) s += wp.get({o, c, 0, 0}) * dw.bias.value().get({c});
    b[static_cast<std::size_t>(o)] = s;
  }
  out.push_back(Tensor::from_values({n_out}, b, wp.dtype()));
  return out;
}

}  // namespace convkit::nn::keras
