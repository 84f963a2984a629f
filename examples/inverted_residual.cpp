// MobileNetV2's InvertedResidual block: expansion 1x1, depthwise 3x3, linear projection, the
// skip connection when stride 1 and in == out, torchvision's keys, and one training step.
#include <cstdio>

#include "convkit/convkit.hpp"

using namespace convkit;

int main() {
  nn::InvertedResidual keep(24, 24, 1, 6.0), down(24, 32, 2, 6.0);
  std::printf("InvertedResidual(24, 24, stride 1, expand 6): residual %s\n",
              keep.use_residual() ? "yes" : "no");
  std::printf("%s\n", nn::summary(keep, {1, 24, 28, 28}).str().c_str());
  for (const auto& [key, t] : keep.state_dict())
    std::printf("  %-24s %s\n", key.c_str(), t.shape().str().c_str());
  std::printf("InvertedResidual(24, 32, stride 2, expand 6): residual %s\n",
              down.use_residual() ? "yes" : "no");

  // One step of training both blocks in a row.
  nn::Sequential net;
  auto a = net.push_back(std::make_shared<nn::InvertedResidual>(24, 24, 1, 6.0));
  auto b = net.push_back(std::make_shared<nn::InvertedResidual>(24, 32, 2, 6.0));
  optim::SGD opt(net.parameters(), {.lr = 0.05, .momentum = 0.9});
  const ag::Variable x(Tensor::uniform({2, 24, 14, 14}, -1, 1, 1));
  const ag::Variable target(Tensor::uniform({2, 32, 7, 7}, -1, 1, 2));
  double first = 0, last = 0;
  for (int step = 0; step < 10; ++step) {
    opt.zero_grad();
    ag::Variable loss = ag::mse_loss(net(x), target);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.value().get_flat(0);
  }
  std::printf("training: loss %.4f -> %.4f over 10 steps\n", first, last);
  const nn::StateDict sd = keep.state_dict();
  const bool ok = keep.use_residual() && !down.use_residual() && sd.size() == 18 &&
                  sd[0].first == "conv.0.0.weight" && sd[0].second.shape() == Shape({144, 24, 1, 1}) &&
                  sd[6].first == "conv.1.0.weight" && sd[6].second.shape() == Shape({144, 1, 3, 3}) &&
                  last < first && a && b;
  std::printf("%s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
