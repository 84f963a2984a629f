// The "depthwise constant" layer: nn::ChannelScale learns one scale (and bias) per channel,
// is the same computation as a 1x1 depthwise Conv2d (same state_dict), and recovers known
// per-channel scales by gradient descent.
#include <cmath>
#include <cstdio>

#include "convkit/convkit.hpp"

using namespace convkit;

int main() {
  const std::int64_t channels = 6;
  nn::ChannelScale scale(channels, /*bias=*/true);
  std::printf("ChannelScale(%lld, bias): weight %s, bias %s, %lld parameters\n",
              static_cast<long long>(channels), scale.weight.shape().str().c_str(),
              scale.bias.shape().str().c_str(),
              static_cast<long long>(nn::count_params(scale).total));

  // Targets y = s*x + b with known s and b per channel.
  const double true_s[channels] = {0.5, -1.0, 2.0, 0.0, 1.5, -0.25};
  const double true_b[channels] = {0.1, 0.0, -0.3, 0.2, 0.0, 0.05};
  const Tensor x = Tensor::uniform({16, channels, 5, 5}, -1, 1, 1);
  Tensor target = Tensor::empty(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const auto c = (i / 25) % channels;
    target.set_flat(i, true_s[c] * x.get_flat(i) + true_b[c]);
  }
  optim::SGD opt(scale.parameters(), {.lr = 0.5});
  double loss = 0;
  for (int step = 0; step < 200; ++step) {
    opt.zero_grad();
    ag::Variable l = ag::mse_loss(scale(ag::Variable(x)), ag::Variable(target));
    l.backward();
    opt.step();
    loss = l.value().get_flat(0);
    if (step % 50 == 0) std::printf("step %3d  loss %.6f\n", step, loss);
  }
  bool ok = loss < 1e-8;
  std::printf("channel  learned scale  true   learned bias  true\n");
  for (std::int64_t c = 0; c < channels; ++c) {
    const double s = scale.weight.value().get_flat(c), b = scale.bias.value().get_flat(c);
    std::printf("%7lld  %13.5f  %5.2f  %12.5f  %5.2f\n", static_cast<long long>(c), s, true_s[c],
                b, true_b[c]);
    ok = ok && std::abs(s - true_s[c]) < 1e-3 && std::abs(b - true_b[c]) < 1e-3;
  }

  // The same computation as Conv2d(C, C, 1, groups=C) with the same state_dict.
  nn::Conv2d conv({.in = channels, .out = channels, .kernel = 1, .groups = channels});
  conv.load_state_dict(scale.state_dict());
  const Tensor a = scale(ag::Variable(x)).value(), b = conv(ag::Variable(x)).value();
  const CloseResult same = allclose(a, b, 1e-6, 1e-6);
  std::printf("ChannelScale vs depthwise 1x1 Conv2d with its state_dict: %s\n",
              same.ok ? "equal within 1e-6" : same.message.c_str());
  ok = ok && same.ok;
  std::printf("%s\n", ok ? "OK: scales recovered, same as the 1x1 depthwise convolution"
                         : "FAILED");
  return ok ? 0 : 1;
}
