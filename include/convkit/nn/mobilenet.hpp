// Blocks and models of efficient networks: ConvBNAct, InvertedResidual, SqueezeExcitation,
// MobileNetV1 and MobileNetV2 with torchvision's structure, channel rounding and keys.
#pragma once

#include <memory>

#include "convkit/nn/conv.hpp"
#include "convkit/nn/layers.hpp"

namespace convkit::nn {

/// torchvision's _make_divisible: v rounded to the nearest multiple of divisor (at least
/// divisor), bumped up one step when rounding lost more than 10%.
std::int64_t make_divisible(double v, std::int64_t divisor = 8);

/// Options of ConvBNAct.
struct ConvBNActOpts {
  std::int64_t in = 0, out = 0;
  std::int64_t kernel = 3;
  std::int64_t stride = 1;
  std::int64_t padding = -1;  // -1: (kernel - 1) / 2 * dilation
  std::int64_t groups = 1;
  std::int64_t dilation = 1;
  bool norm = true;
  Act act = Act::ReLU;
  bool bias = false;  // torchvision: a bias only when there is no norm layer
};
/// torchvision's Conv2dNormActivation: Sequential of "0" Conv2d, "1" BatchNorm2d (when
/// norm), "2" activation (unless Act::None).
class ConvBNAct : public Sequential {
 public:
  explicit ConvBNAct(const ConvBNActOpts& options);
  std::string type_name() const override { return "ConvBNAct"; }
};

/// MobileNetV2's block: optional 1x1 expansion (ConvBNAct ReLU6) when expand_ratio != 1, 3x3
/// depthwise ConvBNAct (ReLU6) with the stride, 1x1 projection Conv2d + BatchNorm2d, all in
/// the child "conv"; x + conv(x) when stride == 1 and in == out.
class InvertedResidual : public Module {
 public:
  InvertedResidual(std::int64_t in, std::int64_t out, std::int64_t stride, double expand_ratio);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "InvertedResidual"; }
  bool use_residual() const { return use_res_; }
  std::shared_ptr<Sequential> conv;

 private:
  bool use_res_;
};

/// torchvision's SqueezeExcitation: x * scale(fc2(act(fc1(avgpool(x))))), fc1 Conv2d(in,
/// squeeze, 1) and fc2 Conv2d(squeeze, in, 1) with biases; keys fc1.*, fc2.*.
class SqueezeExcitation : public Module {
 public:
  SqueezeExcitation(std::int64_t in, std::int64_t squeeze, Act act = Act::ReLU,
                    Act scale_act = Act::Sigmoid);
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "SqueezeExcitation"; }
  std::shared_ptr<Conv2d> fc1, fc2;

 private:
  Act act_, scale_act_;
};

/// Options of the MobileNet models.
struct MobileNetOpts {
  double width = 1.0;  // width multiplier; channels rounded by make_divisible(c * width, 8)
  std::int64_t num_classes = 1000;
  double dropout = 0.2;
  std::uint64_t dropout_seed = 0;
  std::int64_t in_channels = 3;  // 1 for grey images such as MNIST
  /// Input pixels per output pixel of the features: 32 (torchvision, for 224x224 inputs), 16
  /// or 8 for small images. The network has five stride-2 layers (the stem and the first
  /// layer of four stages); a smaller total keeps the later ones and gives the earliest
  /// stride 1 (8: the stem and the next stride-2 stage, as CIFAR variants do for 32x32).
  /// Keys and parameter counts do not change.
  std::int64_t total_stride = 32;
  /// torchvision's initialization (kaiming_normal fan_out for convs, N(0, 0.01) for the
  /// classifier, zero biases); false keeps PyTorch's per-layer defaults.
  bool torchvision_init = true;
};

/// torchvision.models.mobilenet_v2: features (Sequential: ConvBNAct(3, 32w, stride 2),
/// 17 InvertedResidual, ConvBNAct(320w, 1280*max(1, w), 1x1)), global average pool, flatten,
/// classifier (Sequential: "0" Dropout, "1" Linear). Width 1.0, 1000 classes: 3,504,872
/// parameters. Keys equal torchvision's: features.0.0.weight, features.1.conv.0.0.weight,
/// features.18.1.running_var, classifier.1.weight, ...
class MobileNetV2 : public Module {
 public:
  explicit MobileNetV2(const MobileNetOpts& options = {});
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "MobileNetV2"; }
  std::shared_ptr<Sequential> features, classifier;
};

/// MobileNetV1 (Howard et al. 2017): features "0" ConvBNAct(3, 32w, stride 2, ReLU), then 13
/// depthwise-separable blocks, each a Sequential of "0" depthwise ConvBNAct and "1" pointwise
/// ConvBNAct (ReLU); global average pool; classifier ("0" Dropout, "1" Linear(1024w, classes)).
class MobileNetV1 : public Module {
 public:
  explicit MobileNetV1(const MobileNetOpts& options = {});
  ag::Variable forward(const ag::Variable& x) override;
  std::string type_name() const override { return "MobileNetV1"; }
  std::shared_ptr<Sequential> features, classifier;
};

}  // namespace convkit::nn
