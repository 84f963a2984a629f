// Every layer's output, input gradient, parameter gradients and buffers against PyTorch.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "convkit/autograd/functional.hpp"
#include "convkit/nn/nn.hpp"
#include "nn/nn_fixture_util.hpp"

namespace convkit::nn {
namespace {

using Factory = std::function<std::shared_ptr<Module>()>;

template <typename M, typename... A>
Factory make(A... args) {
  return [=] { return std::make_shared<M>(args...); };
}

/// The same layers as LAYERS in tools/fixtures/make_nn_fixtures.py, by fixture name.
const std::map<std::string, Factory>& layers() {
  static const std::map<std::string, Factory> table{
      {"conv1d_k3_s2_p1", make<Conv1d>(ConvOpts{.in = 4, .out = 6, .kernel = 3, .stride = 2,
                                                 .padding = 1})},
      {"conv2d_g2_d2_p2", make<Conv2d>(ConvOpts{.in = 4, .out = 6, .kernel = 3, .padding = 2,
                                                 .dilation = 2, .groups = 2})},
      {"conv2d_reflect_nobias",
       make<Conv2d>(ConvOpts{.in = 3, .out = 4, .kernel = 3, .padding = 1, .bias = false,
                             .padding_mode = PaddingMode::Reflect})},
      {"conv3d_k233_s122_p1", make<Conv3d>(ConvOpts{.in = 2, .out = 3, .kernel = {2, 3, 3},
                                                     .stride = {1, 2, 2}, .padding = 1})},
      {"convt1d_s2_op1", make<ConvTranspose1d>(ConvOpts{.in = 4, .out = 6, .kernel = 3,
                                                         .stride = 2, .padding = 1,
                                                         .output_padding = 1})},
      {"convt2d_g2_s2_op1",
       make<ConvTranspose2d>(ConvOpts{.in = 4, .out = 6, .kernel = 3, .stride = 2, .padding = 1,
                                      .groups = 2, .output_padding = 1})},
      {"convt2d_d2_g2_s2_op1",
       make<ConvTranspose2d>(ConvOpts{.in = 4, .out = 6, .kernel = 3, .stride = 2, .padding = 2,
                                      .dilation = 2, .groups = 2, .output_padding = 1})},
      {"conv2d_same_circular_d2",
       make<Conv2d>(ConvOpts{.in = 3, .out = 4, .kernel = 3, .padding = Padding::same(),
                             .dilation = 2, .padding_mode = PaddingMode::Circular})},
      {"convt3d_s2_p1", make<ConvTranspose3d>(ConvOpts{.in = 2, .out = 4, .kernel = 3,
                                                        .stride = 2, .padding = 1})},
      {"depthwise_mult2", make<DepthwiseConv2d>(DepthwiseOpts{.channels = 4, .multiplier = 2})},
      {"separable_kpl2",
       make<SeparableConv2d>(SeparableOpts{.in = 4, .out = 6, .kernels_per_layer = 2})},
      {"spatially_separable_k3", make<SpatiallySeparableConv2d>(3, 5, 3, true)},
      {"pointwise", make<PointwiseConv2d>(4, 6, true)},
      {"channel_scale_bias", make<ChannelScale>(4, true)},
      {"batchnorm1d", make<BatchNorm1d>(BatchNormOpts{.features = 5})},
      {"batchnorm1d_ncl", make<BatchNorm1d>(BatchNormOpts{.features = 5})},
      {"batchnorm2d", make<BatchNorm2d>(BatchNormOpts{.features = 3})},
      {"linear", make<Linear>(LinearOpts{.in = 6, .out = 4})},
      {"relu", make<ReLU>()},
      {"relu6", make<ReLU6>()},
      {"leaky_relu_0.2", make<LeakyReLU>(0.2)},
      {"sigmoid", make<Sigmoid>()},
      {"hardsigmoid", make<Hardsigmoid>()},
      {"hardswish", make<Hardswish>()},
      {"silu", make<SiLU>()},
      {"tanh", make<Tanh>()},
      {"softmax_dim1", make<Softmax>(1)},
      {"maxpool_k3_s2_p1", make<MaxPool2d>(PoolOpts{.kernel = 3, .stride = {2}, .padding = 1})},
      {"avgpool_k3_s2_p1_nopad",
       make<AvgPool2d>(PoolOpts{.kernel = 3, .stride = {2}, .padding = 1,
                                .count_include_pad = false})},
      {"avgpool_k2", make<AvgPool2d>(PoolOpts{.kernel = 2})},
      {"adaptive_avgpool_3", make<AdaptiveAvgPool2d>(3, -1)},
      {"flatten", make<Flatten>(1, -1)},
      {"convbnact_relu6_s2",
       make<ConvBNAct>(ConvBNActOpts{.in = 4, .out = 8, .stride = 2, .act = Act::ReLU6})},
      {"inverted_residual_res", make<InvertedResidual>(8, 8, 1, 6.0)},
      {"inverted_residual_s2_t1", make<InvertedResidual>(8, 16, 2, 1.0)},
      {"squeeze_excitation", make<SqueezeExcitation>(8, 4, Act::ReLU, Act::Sigmoid)},
  };
  return table;
}

std::vector<std::string> layer_names() {
  std::vector<std::string> out;
  for (const auto& [name, f] : layers()) out.push_back(name);
  return out;
}

constexpr double kRtol = 1e-4, kAtol = 1e-5;

class LayerFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(LayerFixture, ForwardAndGradientsMatchPyTorch) {
  const std::string name = GetParam();
  const io::SafetensorsFile file = test::nn_fixture(name);
  int modes = 0;
  for (const std::string mode : {"train", "eval"}) {
    if (!file.contains(mode + ".out")) continue;
    ++modes;
    SCOPED_TRACE(name + " in " + mode + " mode");
    std::shared_ptr<Module> m = layers().at(name)();
    m->load_state_dict(test::with_prefix(file, "state."));
    m->train(mode == "train");
    ag::Variable x(file.at("x").clone(), /*requires_grad=*/true);
    ag::Variable out = (*m)(x);
    test::expect_close(out.value(), file.at(mode + ".out"), kRtol, kAtol, "out");
    out.backward(file.at("R"));  // the gradient of sum(out * R)
    test::expect_close(x.grad(), file.at(mode + ".grad.x"), kRtol, kAtol, "grad.x");
    for (const auto& [key, p] : m->named_parameters())
      test::expect_close(p.grad(), file.at(mode + ".grad." + key), kRtol, kAtol, "grad." + key);
    for (const auto& [key, b] : m->named_buffers())
      test::expect_close(b, file.at(mode + ".state." + key), kRtol, kAtol, "state." + key);
  }
  EXPECT_GT(modes, 0);
}

INSTANTIATE_TEST_SUITE_P(Nn, LayerFixture, ::testing::ValuesIn(layer_names()),
                         [](const auto& param_info) {
                           std::string s = param_info.param;
                           for (char& c : s)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return s;
                         });

TEST(Dropout, DeterministicFromItsSeedAndIdentityInEval) {
  ag::Variable x(Tensor::ones({4, 1000}));
  Dropout a(0.25, 7), b(0.25, 7);
  const Tensor ya = a(x).value(), yb = b(x).value();
  EXPECT_TRUE(allclose(ya, yb, 0, 0));
  EXPECT_FALSE(allclose(a(x).value(), ya, 0, 0));  // the state advanced: a new mask
  std::int64_t zeros = 0;
  for (double v : ya.to_vector()) {
    if (v == 0) ++zeros;
    else EXPECT_NEAR(v, 1 / 0.75, 1e-6);
  }
  EXPECT_NEAR(static_cast<double>(zeros) / 4000.0, 0.25, 0.04);
  a.eval();
  EXPECT_TRUE(allclose(a(x).value(), x.value(), 0, 0));
}

TEST(Residual, AddsItsInput) {
  auto body = std::make_shared<ChannelScale>(2, false);
  body->weight.value().fill(2.0);
  Residual r(body);
  EXPECT_EQ(r.state_dict()[0].first, "body.weight");
  ag::Variable x(Tensor::full({1, 2, 3, 3}, 1.5));
  EXPECT_TRUE(allclose(r(x).value(), Tensor::full({1, 2, 3, 3}, 4.5), 0, 0));
}

}  // namespace
}  // namespace convkit::nn
