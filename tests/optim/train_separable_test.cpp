// A small separable-conv network learns oriented stripes: the whole training stack end to end.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <numbers>

#include "convkit/autograd/functional.hpp"
#include "convkit/nn/nn.hpp"
#include "convkit/optim/adam.hpp"
#include "convkit/optim/clip.hpp"
#include "convkit/optim/schedule.hpp"

namespace convkit {
namespace {

constexpr std::int64_t kClasses = 4;
constexpr std::int64_t kSize = 16;

/// `n` 16x16 single-channel images of noisy sine stripes and their classes; class c has its
/// stripes at c * 45 degrees, a random period of 3 to 6 pixels and a random phase.
/// Deterministic for a seed on every platform (Tensor::uniform/normal are).
std::pair<Tensor, Tensor> stripes(std::int64_t n, std::uint64_t seed) {
  const Tensor draw = Tensor::uniform({n, 3}, 0, 1, seed, DType::F64);
  const Tensor noise = Tensor::normal({n, 1, kSize, kSize}, 0, 0.3, seed + 1);
  Tensor x = Tensor::empty({n, 1, kSize, kSize});
  Tensor y = Tensor::empty({n}, DType::I64);
  float* px = x.data<float>();
  const float* pn = noise.data<float>();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto cls = std::min<std::int64_t>(kClasses - 1,
                                            static_cast<std::int64_t>(draw.get({i, 0}) * kClasses));
    const double period = 3 + 3 * draw.get({i, 1});
    const double phase = 2 * std::numbers::pi * draw.get({i, 2});
    const double angle = static_cast<double>(cls) * std::numbers::pi / 4;
    const double cx = std::cos(angle) / period, cy = std::sin(angle) / period;
    y.data<std::int64_t>()[i] = cls;
    for (std::int64_t h = 0; h < kSize; ++h)
      for (std::int64_t w = 0; w < kSize; ++w, ++px, ++pn)
        *px =
            static_cast<float>(std::sin(
                2 * std::numbers::pi * (static_cast<double>(w) * cx + static_cast<double>(h) * cy) +
                phase)) +
            *pn;
  }
  return {x, y};
}

/// conv-BN-ReLU stem, a separable block, max pooling, a depthwise block, global pooling and
/// a linear classifier: 16x16x1 -> 4 logits.
std::shared_ptr<nn::Sequential> make_net() {
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(std::make_shared<nn::Conv2d>(
      nn::ConvOpts{.in = 1, .out = 8, .kernel = 3, .padding = 1, .bias = false}));
  net->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 8}));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<nn::SeparableConv2d>(
      nn::SeparableOpts{.in = 8, .out = 16, .kernel = 3, .padding = 1, .bias = false}));
  net->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 16}));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<nn::MaxPool2d>(nn::PoolOpts{.kernel = 2}));
  net->push_back(std::make_shared<nn::DepthwiseConv2d>(
      nn::DepthwiseOpts{.channels = 16, .kernel = 3, .padding = 1, .bias = false}));
  net->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 16}));
  net->push_back(std::make_shared<nn::ReLU>());
  net->push_back(std::make_shared<nn::AdaptiveAvgPool2d>(1));
  net->push_back(std::make_shared<nn::Flatten>());
  net->push_back(std::make_shared<nn::Linear>(nn::LinearOpts{.in = 16, .out = kClasses}));
  return net;
}

double accuracy(nn::Module& net, const Tensor& x, const Tensor& y) {
  ag::NoGradGuard no_grad;
  net.eval();
  const Tensor logits = net(ag::Variable(x)).value();
  net.train();
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) {
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < kClasses; ++c)
      if (logits.get({i, c}) > logits.get({i, best})) best = c;
    right += best == y.data<std::int64_t>()[i] ? 1 : 0;
  }
  return static_cast<double>(right) / static_cast<double>(y.numel());
}

TEST(TrainSeparable, LearnsOrientedStripesWithinAFixedNumberOfSteps) {
  constexpr int kSteps = 30;
  constexpr std::int64_t kBatch = 16;
  nn::manual_seed(0);
  auto net = make_net();
  optim::AdamW opt(net->named_parameters(), {.lr = 0.02, .weight_decay = 1e-4});
  optim::LrScheduler sched(
      opt, optim::Schedule::cosine({.t_max = kSteps, .eta_min = 1e-3}).with_warmup({.epochs = 3}));
  const auto [test_x, test_y] = stripes(256, 7);
  const double before = accuracy(*net, test_x, test_y);

  const auto start = std::chrono::steady_clock::now();
  double loss = 0;
  for (int step = 0; step < kSteps; ++step) {
    const auto [x, y] = stripes(kBatch, 1000 + 2 * static_cast<std::uint64_t>(step));
    opt.zero_grad();
    ag::Variable l = ag::cross_entropy((*net)(ag::Variable(x)), y);
    l.backward();
    optim::clip_grad_norm(net->parameters(), 5.0);
    opt.step();
    sched.step();
    loss = l.value().get_flat(0);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double after = accuracy(*net, test_x, test_y);
  std::printf("stripes: accuracy %.3f -> %.3f after %d steps (last loss %.3f, %.2f s)\n", before,
              after, kSteps, loss, seconds);
  EXPECT_GE(after, 0.90);
  EXPECT_LT(before, 0.5);
}

}  // namespace
}  // namespace convkit
