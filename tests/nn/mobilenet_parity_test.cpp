// MobileNetV2 against PyTorch: logits in eval mode and one SGD-momentum training step.
#include <gtest/gtest.h>

#include <cmath>

#include "convkit/autograd/functional.hpp"
#include "convkit/nn/nn.hpp"
#include "nn/nn_fixture_util.hpp"

namespace convkit::nn {
namespace {

constexpr double kLr = 0.1, kWeightDecay = 4e-5;

/// rtol 1e-4 per logit, plus an absolute slack of 2e-5 x the largest logit for logits near
/// zero (float32 rounding through 52 layers, in PyTorch as here, is relative to the scale).
void expect_logits(const Tensor& got, const Tensor& want, const std::string& what) {
  double scale = 0;
  for (double v : want.to_vector()) scale = std::max(scale, std::abs(v));
  test::expect_close(got, want, 1e-4, 2e-5 * scale, what);
}

/// PyTorch's SGD first step with momentum: the buffer starts as d = grad + weight_decay * w,
/// so w -= lr * d (momentum and dampening only act from the second step on).
void sgd_first_step(Module& model) {
  for (const auto& p : model.parameters()) {
    const Tensor w = p.value(), g = p.grad();
    for (std::int64_t i = 0; i < w.numel(); ++i) {
      const double d = g.get_flat(i) + kWeightDecay * w.get_flat(i);
      w.set_flat(i, w.get_flat(i) - kLr * d);
    }
  }
}

Tensor train_step(Module& model, const Tensor& x, const Tensor& target) {
  model.train();
  model.zero_grad();
  ag::Variable loss = ag::cross_entropy(model(ag::Variable(x)), target);
  loss.backward();
  return loss.value();
}

Tensor eval_logits(Module& model, const Tensor& x) {
  model.eval();
  ag::NoGradGuard no_grad;
  return model(ag::Variable(x)).value();
}

TEST(MobileNetV2Parity, Width035LogitsAndOneSgdStep) {
  const io::SafetensorsFile f = test::nn_fixture("mobilenet_v2_w035");
  const Tensor x = Tensor::uniform({4, 3, 96, 96}, -1, 1, test::fnv1a64("x"));
  MobileNetV2 model({.width = 0.35, .num_classes = 10, .dropout = 0.0});
  model.load_state_dict(test::with_prefix(f, "state."));  // by key, strict
  expect_logits(eval_logits(model, x), f.at("eval.logits"), "logits");

  const Tensor loss = train_step(model, x, f.at("target"));
  test::expect_close(loss.reshape({1}), f.at("train.loss"), 1e-4, 0, "loss");
  sgd_first_step(model);
  for (const auto& [key, t] : model.state_dict())
    test::expect_close(t, f.at("step." + key), 1e-4, 1e-5, "after the step: " + key);
}

/// Width 1.0: weights generated from each key on both sides (see the generator).
class MobileNetV2Width1 : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto& [key, t] : model.state_dict())
      if (is_floating(t.dtype())) t.copy_from(test::deterministic_entry(key, t.shape()));
  }
  MobileNetV2 model{{.width = 1.0, .num_classes = 1000, .dropout = 0.0}};
  io::SafetensorsFile f = test::nn_fixture("mobilenet_v2_w100");
};

TEST_F(MobileNetV2Width1, LogitsAt32) {
  const Tensor x = Tensor::uniform({2, 3, 32, 32}, -1, 1, test::fnv1a64("x"));
  expect_logits(eval_logits(model, x), f.at("eval.logits"), "logits");
}

TEST_F(MobileNetV2Width1, LogitsAt224) {
  const Tensor x224 = Tensor::uniform({1, 3, 224, 224}, -1, 1, test::fnv1a64("x224"));
  expect_logits(eval_logits(model, x224), f.at("eval.logits224"), "logits224");
}

}  // namespace
}  // namespace convkit::nn
