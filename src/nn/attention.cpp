// ChannelAttention (SE-Net), CBAM's ChannelGate and SpatialAttention, and the CBAM block.
#include "convkit/nn/attention.hpp"
#include "core/check.hpp"

namespace convkit::nn {

using convkit::detail::require;
using I = std::int64_t;

namespace {

// C // r, refusing what PyTorch would silently turn into a zero-width layer.
I hidden_width(const char* name, I channels, I reduction) {
  require(channels > 0, "{}: channels must be > 0, got {}", name, channels);
  require(reduction > 0, "{}: reduction must be > 0, got {}", name, reduction);
  require(channels / reduction >= 1,
          "{}: channels / reduction must be >= 1, got {} / {} = 0 hidden units", name, channels,
          reduction);
  return channels / reduction;
}

// Refuses anything but (N, channels, H, W), naming the block.
void require_input(const char* name, const ag::Variable& x, I channels) {
  require(x.defined(), "{}: the input is undefined", name);
  require(x.dim() == 4, "{}: x must be (N, C, H, W), got shape {}", name, x.shape());
  require(channels < 0 || x.size(1) == channels, "{}: x has {} channels, expected {} (shape {})",
          name, x.size(1), channels, x.shape());
}

}  // namespace

ChannelAttention::ChannelAttention(I channels, I reduction) : channels_(channels) {
  const I hidden = hidden_width("ChannelAttention", channels, reduction);
  avg_pool = register_module("avg_pool", std::make_shared<AdaptiveAvgPool2d>(1));
  fc = register_module("fc", std::make_shared<Sequential>());
  fc->push_back(std::make_shared<Linear>(LinearOpts{.in = channels, .out = hidden, .bias = false}));
  fc->push_back(std::make_shared<ReLU>());
  fc->push_back(std::make_shared<Linear>(LinearOpts{.in = hidden, .out = channels, .bias = false}));
  fc->push_back(std::make_shared<Sigmoid>());
}

ag::Variable ChannelAttention::weights(const ag::Variable& x) {
  require_input("ChannelAttention", x, channels_);
  const I n = x.size(0);
  const ag::Variable s = ag::reshape((*avg_pool)(x), {n, channels_});
  return ag::reshape((*fc)(s), {n, channels_, 1, 1});
}

ag::Variable ChannelAttention::forward(const ag::Variable& x) { return ag::mul(x, weights(x)); }

ChannelGate::ChannelGate(I channels, I reduction) : channels_(channels) {
  const I hidden = hidden_width("ChannelGate", channels, reduction);
  fc = register_module("fc", std::make_shared<Sequential>());
  fc->push_back(std::make_shared<Conv2d>(ConvOpts{.in = channels, .out = hidden, .bias = false}));
  fc->push_back(std::make_shared<ReLU>());
  fc->push_back(std::make_shared<Conv2d>(ConvOpts{.in = hidden, .out = channels, .bias = false}));
}

ag::Variable ChannelGate::weights(const ag::Variable& x) {
  require_input("ChannelGate", x, channels_);
  require(x.size(2) > 0 && x.size(3) > 0, "ChannelGate: x has no pixels (shape {})",
          x.shape());
  const ag::Variable avg = (*fc)(ag::mean(x, {2, 3}, true));
  const ag::Variable max = (*fc)(ag::amax(x, {2, 3}, true));
  return ag::sigmoid(ag::add(avg, max));
}

ag::Variable ChannelGate::forward(const ag::Variable& x) { return ag::mul(x, weights(x)); }

SpatialAttention::SpatialAttention(I kernel) {
  require(kernel == 3 || kernel == 7, "SpatialAttention: kernel must be 3 or 7, got {}", kernel);
  conv1 = register_module(
      "conv1", std::make_shared<Conv2d>(ConvOpts{
                   .in = 2, .out = 1, .kernel = kernel, .padding = kernel / 2, .bias = false}));
}

ag::Variable SpatialAttention::weights(const ag::Variable& x) {
  require_input("SpatialAttention", x, -1);
  require(x.size(1) > 0, "SpatialAttention: x has no channels (shape {})", x.shape());
  const ag::Variable pooled = ag::concat({ag::mean(x, {1}, true), ag::amax(x, {1}, true)}, 1);
  return ag::sigmoid((*conv1)(pooled));
}

ag::Variable SpatialAttention::forward(const ag::Variable& x) { return ag::mul(x, weights(x)); }

CBAM::CBAM(const CBAMOpts& o) {
  ca = register_module("ca", std::make_shared<ChannelGate>(o.channels, o.reduction));
  sa = register_module("sa", std::make_shared<SpatialAttention>(o.spatial_kernel));
}

ag::Variable CBAM::forward(const ag::Variable& x) { return (*sa)((*ca)(x)); }

}  // namespace convkit::nn
