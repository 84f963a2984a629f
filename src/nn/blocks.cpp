// ConvBNAct, InvertedResidual and SqueezeExcitation, shaped like torchvision's.
#include <cmath>

#include "convkit/nn/mobilenet.hpp"
#include "core/check.hpp"

namespace convkit::nn {

using convkit::detail::require;

std::int64_t make_divisible(double v, std::int64_t divisor) {
  require(divisor > 0 && v >= 0, "make_divisible: needs v >= 0 and divisor > 0, got {} and {}",
          v, divisor);
  const auto d = static_cast<double>(divisor);
  // int(v + divisor / 2) // divisor * divisor, as Python computes it for v >= 0
  std::int64_t rounded = static_cast<std::int64_t>(v + d / 2) / divisor * divisor;
  rounded = std::max(divisor, rounded);
  if (static_cast<double>(rounded) < 0.9 * v) rounded += divisor;
  return rounded;
}

ConvBNAct::ConvBNAct(const ConvBNActOpts& o) {
  const std::int64_t padding = o.padding >= 0 ? o.padding : (o.kernel - 1) / 2 * o.dilation;
  push_back(std::make_shared<Conv2d>(ConvOpts{.in = o.in,
                                              .out = o.out,
                                              .kernel = o.kernel,
                                              .stride = o.stride,
                                              .padding = padding,
                                              .dilation = o.dilation,
                                              .groups = o.groups,
                                              .bias = o.bias || !o.norm}));
  if (o.norm) push_back(std::make_shared<BatchNorm2d>(BatchNormOpts{.features = o.out}));
  if (o.act != Act::None) push_back(std::make_shared<Activation>(o.act));
}

InvertedResidual::InvertedResidual(std::int64_t in, std::int64_t out, std::int64_t stride,
                                   double expand_ratio)
    : use_res_(stride == 1 && in == out) {
  require(stride == 1 || stride == 2, "InvertedResidual: stride must be 1 or 2, got {}", stride);
  require(expand_ratio >= 1, "InvertedResidual: expand_ratio must be >= 1, got {}", expand_ratio);
  // Python's round(): ties to even, which std::nearbyint does in the default rounding mode.
  const auto hidden =
      static_cast<std::int64_t>(std::nearbyint(static_cast<double>(in) * expand_ratio));
  conv = register_module("conv", std::make_shared<Sequential>());
  if (expand_ratio != 1.0)
    conv->push_back(std::make_shared<ConvBNAct>(
        ConvBNActOpts{.in = in, .out = hidden, .kernel = 1, .act = Act::ReLU6}));
  conv->push_back(std::make_shared<ConvBNAct>(ConvBNActOpts{
      .in = hidden, .out = hidden, .stride = stride, .groups = hidden, .act = Act::ReLU6}));
  conv->push_back(std::make_shared<Conv2d>(ConvOpts{.in = hidden, .out = out, .bias = false}));
  conv->push_back(std::make_shared<BatchNorm2d>(BatchNormOpts{.features = out}));
}

ag::Variable InvertedResidual::forward(const ag::Variable& x) {
  ag::Variable y = (*conv)(x);
  return use_res_ ? ag::add(x, y) : y;
}

SqueezeExcitation::SqueezeExcitation(std::int64_t in, std::int64_t squeeze, Act act,
                                     Act scale_act)
    : act_(act), scale_act_(scale_act) {
  fc1 = register_module("fc1", std::make_shared<Conv2d>(ConvOpts{.in = in, .out = squeeze}));
  fc2 = register_module("fc2", std::make_shared<Conv2d>(ConvOpts{.in = squeeze, .out = in}));
}

ag::Variable SqueezeExcitation::forward(const ag::Variable& x) {
  ag::Variable s = ag::adaptive_avg_pool2d(x, 1, 1);
  s = activate(scale_act_, (*fc2)(activate(act_, (*fc1)(s))));
  return ag::mul(s, x);
}

}  // namespace convkit::nn
