// Keras-style DepthwiseConv2D and the 64 -> 128 SeparableConv2D block on NHWC input: shapes,
// count_params as Keras reports them (27 and 8,896), a summary table, and the same block
// loaded into the PyTorch-layout nn::SeparableConv2d giving the same output.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "convkit/autograd/functional.hpp"
#include "convkit/convkit.hpp"
#include "convkit/nn/nn.hpp"

using namespace convkit;
namespace keras = convkit::nn::keras;

int main() {
  nn::manual_seed(0);
  bool ok = true;

  // keras.layers.DepthwiseConv2D(3, use_bias=False) on 3 channels: 3*3*3*1 weights.
  auto dw = std::make_shared<keras::DepthwiseConv2D>(keras::DepthwiseConv2DOpts{
      .in_channels = 3, .kernel_size = 3, .padding = "same", .use_bias = false});
  const ag::Variable x(Tensor::uniform({1, 32, 32, 3}, -1, 1, 1));  // (N, H, W, C)
  const ag::Variable y = (*dw)(x);
  std::printf("DepthwiseConv2D(3x3, same, no bias): %s -> %s, count_params %lld (Keras: 27)\n",
              x.shape().str().c_str(), y.shape().str().c_str(),
              static_cast<long long>(dw->count_params()));
  ok = ok && dw->count_params() == 27 && y.shape() == Shape{1, 32, 32, 3};

  // keras.layers.SeparableConv2D(128, 3, strides=2, padding="same") on 64 channels:
  // 64*9 depthwise + 64*128 pointwise + 128 bias.
  auto sep = std::make_shared<keras::SeparableConv2D>(keras::SeparableConv2DOpts{
      .in_channels = 64, .filters = 128, .kernel_size = 3, .strides = 2, .padding = "same"});
  const ag::Variable h(Tensor::uniform({2, 17, 17, 64}, -1, 1, 2));
  const ag::Variable z = (*sep)(h);
  std::printf(
      "SeparableConv2D(128, 3x3, stride 2, same): %s -> %s, count_params %lld "
      "(Keras: 8,896)\n",
      h.shape().str().c_str(), z.shape().str().c_str(),
      static_cast<long long>(sep->count_params()));
  ok = ok && sep->count_params() == 8896 && z.shape() == Shape{2, 9, 9, 128};

  // A small Keras-style model and its summary: depthwise, 1x1 Conv2D to 64, the block.
  nn::Sequential model;
  model.push_back(dw);
  model.push_back(std::make_shared<keras::Conv2D>(
      keras::Conv2DOpts{.in_channels = 3, .filters = 64, .kernel_size = 1}));
  model.push_back(std::make_shared<nn::ReLU>());
  model.push_back(sep);
  const nn::Summary s = nn::summary(model, {1, 32, 32, 3});
  std::cout << s.str();
  ok = ok && s.count.total == 27 + (3 * 64 + 64) + 8896;

  // The same block as PyTorch's layout: the Keras weights in nn::SeparableConv2d (the Keras
  // bias goes to pointwise.bias), run on the NCHW view of the same input.
  nn::SeparableConv2d torch_block({.in = 64, .out = 128, .stride = 2, .padding = Padding::same()});
  keras::load_keras_separable(torch_block, sep->get_weights());
  const ag::Variable zt = ag::permute(torch_block(ag::permute(h, {0, 3, 1, 2})), {0, 2, 3, 1});
  double worst = 0;
  const std::vector<double> a = z.value().to_vector(), b = zt.value().to_vector();
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  std::printf("nn::SeparableConv2d with the Keras weights: max |difference| %.3g\n", worst);
  ok = ok && worst < 1e-4;

  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
