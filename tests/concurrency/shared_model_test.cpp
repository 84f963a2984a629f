// One model shared by 8 threads for inference gives the serial results bit for bit; run under
// ThreadSanitizer by scripts/sanitize.sh (the suite "Concurrency").
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "convkit/autograd/functional.hpp"
#include "convkit/nn/nn.hpp"

namespace convkit {
namespace {

constexpr int kThreads = 8;

// Each thread runs `per_thread` inferences on its own inputs; results are compared with the
// same inferences run serially first. Tensor equality is bitwise (allclose with 0 tolerances).
template <typename Infer>
void expect_concurrent_equals_serial(Infer infer, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> serial;
  for (const Tensor& x : inputs) serial.push_back(infer(x));
  std::vector<Tensor> parallel(inputs.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (std::size_t i = static_cast<std::size_t>(t); i < inputs.size(); i += kThreads)
        parallel[i] = infer(inputs[i]);
    });
  for (auto& th : threads) th.join();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const CloseResult r = allclose(parallel[i], serial[i], 0, 0);
    EXPECT_TRUE(r.ok) << "input " << i << ": " << r.message;
  }
}

std::vector<Tensor> batches(int count, const Shape& shape) {
  std::vector<Tensor> out;
  for (int i = 0; i < count; ++i)
    out.push_back(Tensor::uniform(shape, -1, 1, 1000 + static_cast<std::uint64_t>(i)));
  return out;
}

TEST(Concurrency, MobileNetV2InferenceFromEightThreads) {
  nn::manual_seed(1);
  nn::MobileNetV2 model({.width = 0.25, .num_classes = 10, .total_stride = 8});
  model.eval();
  auto infer = [&](const Tensor& x) {
    ag::NoGradGuard no_grad;  // per thread: grad mode is thread-local
    return model(ag::Variable(x)).value();
  };
  expect_concurrent_equals_serial(infer, batches(16, {2, 3, 32, 32}));
}

TEST(Concurrency, ChannelsLastSeparableAndPrunedLayersFromEightThreads) {
  nn::manual_seed(2);
  nn::Sequential net;
  net.push_back(std::make_shared<nn::ConvBNAct>(nn::ConvBNActOpts{.in = 3, .out = 16, .stride = 2}));
  net.push_back(std::make_shared<nn::SeparableConv2d>(
      nn::SeparableOpts{.in = 16, .out = 24, .kernels_per_layer = 2}));
  auto last = net.push_back(std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 24, .out = 8, .kernel = 1}));
  net.push_back(std::make_shared<nn::ChannelAttention>(8, 2));
  nn::prune::magnitude(*last, "weight", 0.95);  // sparse enough for the sparse forward
  net.eval();
  auto infer = [&](const Tensor& x) {
    ag::NoGradGuard no_grad;
    return net(ag::Variable(x.to(MemoryFormat::ChannelsLast))).value().contiguous();
  };
  expect_concurrent_equals_serial(infer, batches(16, {2, 3, 24, 24}));
}

TEST(Concurrency, TrainingSeparateModelsInParallelMatchesSerial) {
  // Independent models and optimizers on different threads: the thread-local graph and grad
  // mode keep them apart.
  auto train = [](std::uint64_t seed) {
    nn::Conv2d conv({.in = 2, .out = 3, .kernel = 3, .padding = 1});
    conv.weight.set_value(Tensor::uniform(conv.weight.shape(), -0.5, 0.5, seed));
    conv.bias.set_value(Tensor::uniform(conv.bias.shape(), -0.5, 0.5, seed + 2));
    const ag::Variable x(Tensor::uniform({2, 2, 8, 8}, -1, 1, seed + 1));
    for (int step = 0; step < 3; ++step) {
      conv.zero_grad();
      ag::sum(ag::mul(conv(x), conv(x))).backward();
      conv.weight.set_value(ag::sub(conv.weight, ag::mul(ag::Variable(conv.weight.grad()), 0.01))
                                .value());
    }
    return conv.weight.value().clone();
  };
  std::vector<Tensor> serial, parallel(kThreads);
  for (int t = 0; t < kThreads; ++t) serial.push_back(train(static_cast<std::uint64_t>(t) * 7));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] { parallel[static_cast<std::size_t>(t)] = train(static_cast<std::uint64_t>(t) * 7); });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_TRUE(allclose(parallel[static_cast<std::size_t>(t)], serial[static_cast<std::size_t>(t)], 0, 0).ok) << t;
}

}  // namespace
}  // namespace convkit
