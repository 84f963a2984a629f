// Attention blocks that reweight feature maps: SE-Net's ChannelAttention and CBAM (its channel
// gate, SpatialAttention and the CBAM block), with the state_dict keys of common PyTorch code.
#pragma once

#include <cstdint>
#include <memory>

#include "convkit/nn/conv.hpp"
#include "convkit/nn/layers.hpp"

namespace convkit::nn {

/// SE-Net's squeeze-and-excitation block as it is usually written in PyTorch
/// (`self.avg_pool = nn.AdaptiveAvgPool2d(1)`, `self.fc = nn.Sequential(nn.Linear(C, C // r,
/// bias=False), nn.ReLU(), nn.Linear(C // r, C, bias=False), nn.Sigmoid())`):
///   a = sigmoid(W2 relu(W1 mean_{h,w} x)),   y = x * a[:, :, None, None]
/// W1 (C/r, C), W2 (C, C/r), C/r rounded down and at least 1. Keys: fc.0.weight, fc.2.weight.
/// (torchvision's SqueezeExcitation is the 1x1-conv variant with biases, keys fc1.*, fc2.*.)
///   nn::ChannelAttention se(64, 16);   // 2 * 64 * 4 = 512 parameters
///   ag::Variable y = se(x);            // same shape as x
class ChannelAttention : public Module {
 public:
  explicit ChannelAttention(std::int64_t channels, std::int64_t reduction = 16);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "ChannelAttention"; }
  /// The attention weights a, (N, C, 1, 1), each in (0, 1).
  ag::Variable weights(const ag::Variable& x);
  std::shared_ptr<AdaptiveAvgPool2d> avg_pool;
  std::shared_ptr<Sequential> fc;

 private:
  std::int64_t channels_;
};

/// CBAM's channel gate (Woo et al. 2018), keys as in luuuyi/CBAM.PyTorch's ChannelAttention
/// (`fc = nn.Sequential(nn.Conv2d(C, C // r, 1, bias=False), nn.ReLU(),
/// nn.Conv2d(C // r, C, 1, bias=False))`): the average- and max-pooled descriptors go through
/// the one shared MLP and are summed:
///   a = sigmoid(fc(mean_{h,w} x) + fc(max_{h,w} x)),   y = x * a
/// Keys: fc.0.weight (C/r, C, 1, 1), fc.2.weight (C, C/r, 1, 1). The global max is ag::amax,
/// whose gradient splits evenly among tied maxima (PyTorch's AdaptiveMaxPool2d sends it to
/// one of them; they agree whenever the maximum is unique).
class ChannelGate : public Module {
 public:
  explicit ChannelGate(std::int64_t channels, std::int64_t reduction = 16);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "ChannelGate"; }
  /// The attention weights a, (N, C, 1, 1).
  ag::Variable weights(const ag::Variable& x);
  std::shared_ptr<Sequential> fc;

 private:
  std::int64_t channels_;
};

/// CBAM's spatial gate, keys as luuuyi/CBAM.PyTorch's SpatialAttention: the channel-wise mean
/// and max, concatenated in that order (2 channels), a kernel x kernel convolution to one
/// channel (padding kernel/2, no bias), a sigmoid:
///   a = sigmoid(conv1([mean_c x, max_c x])),   y = x * a      a: (N, 1, H, W)
/// kernel 7 (the paper's) or 3. Key: conv1.weight (1, 2, k, k).
class SpatialAttention : public Module {
 public:
  explicit SpatialAttention(std::int64_t kernel = 7);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "SpatialAttention"; }
  /// The attention map a, (N, 1, H, W).
  ag::Variable weights(const ag::Variable& x);
  std::shared_ptr<Conv2d> conv1;
};

/// Options of CBAM.
struct CBAMOpts {
  std::int64_t channels = 0;
  std::int64_t reduction = 16;
  std::int64_t spatial_kernel = 7;  // 7 or 3
};

/// The Convolutional Block Attention Module: the channel gate, then the spatial gate,
///   y = sa(ca(x)),  that is  x' = x * a_c(x),  y = x' * a_s(x')
/// as luuuyi/CBAM.PyTorch applies them inside its blocks (`out = self.ca(out) * out;
/// out = self.sa(out) * out`). Keys: ca.fc.0.weight, ca.fc.2.weight, sa.conv1.weight.
///   nn::CBAM cbam({.channels = 64, .reduction = 16});
class CBAM : public Module {
 public:
  explicit CBAM(const CBAMOpts& options);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "CBAM"; }
  std::shared_ptr<ChannelGate> ca;
  std::shared_ptr<SpatialAttention> sa;
};

}  // namespace convkit::nn
