// Depthwise-separable convolution with kernels_per_layer (the depthwise multiplier): the
// layer people write as depthwise Conv2d(in, in*k, groups=in) + pointwise Conv2d(in*k, out, 1),
// its keys, its cost against a standard 3x3 convolution, and a training step.
#include <cstdio>

#include "convkit/convkit.hpp"

using namespace convkit;

int main() {
  const std::int64_t in = 32, out = 64, kpl = 2;
  nn::SeparableConv2d sep({.in = in, .out = out, .kernels_per_layer = kpl});
  nn::manual_seed(1);
  nn::Conv2d dense({.in = in, .out = out, .kernel = 3, .padding = 1});
  const nn::Summary s = nn::summary(sep, {1, in, 56, 56});
  const nn::Summary d = nn::summary(dense, {1, in, 56, 56});
  std::printf("%s\n", s.str().c_str());
  for (const auto& [key, t] : sep.state_dict())
    std::printf("  %-18s %s\n", key.c_str(), t.shape().str().c_str());
  // depthwise: in*kpl kernels of 3x3 + in*kpl biases; pointwise: in*kpl*out + out.
  const std::int64_t expect = in * kpl * 9 + in * kpl + in * kpl * out + out;
  std::printf("parameters %lld (formula %lld), standard 3x3 conv %lld: %.1fx fewer\n",
              static_cast<long long>(s.count.total), static_cast<long long>(expect),
              static_cast<long long>(d.count.total),
              static_cast<double>(d.count.total) / static_cast<double>(s.count.total));
  std::printf("MACs %lld vs %lld: %.1fx fewer\n", static_cast<long long>(s.total_macs),
              static_cast<long long>(d.total_macs),
              static_cast<double>(d.total_macs) / static_cast<double>(s.total_macs));

  optim::SGD opt(sep.parameters(), {.lr = 0.01});
  const ag::Variable x(Tensor::uniform({2, in, 8, 8}, -1, 1, 1));
  const ag::Variable target(Tensor::uniform({2, out, 8, 8}, -1, 1, 2));
  double first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {  // small: the example runs in the test suite
    opt.zero_grad();
    ag::Variable loss = ag::mse_loss(sep(x), target);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.value().get_flat(0);
  }
  std::printf("training: loss %.4f -> %.4f over 20 SGD steps\n", first, last);
  const bool ok = s.count.total == expect && s.rows.back().output == Shape({1, out, 56, 56}) &&
                  d.total_macs > s.total_macs && last < first;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
