// Attention blocks against PyTorch modules (tests/fixtures/attention): keys, outputs, attention
// maps, input and parameter gradients; float64 gradchecks of their formulas; bad options.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "autograd/ag_test_util.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/nn/nn.hpp"
#include "nn/nn_fixture_util.hpp"
#include "test_util.hpp"

namespace convkit::nn {
namespace {

using ag::Variable;
using V = std::vector<Variable>;

io::SafetensorsFile attention_fixture(const std::string& name) {
  return io::load_safetensors(std::string(CONVKIT_FIXTURE_DIR) + "/attention/" + name +
                              ".safetensors");
}

// The module of each fixture and a function giving its attention map for x.
struct Case {
  std::function<std::shared_ptr<Module>()> make;
  std::function<Variable(Module&, const Variable&)> attention;
};

const std::map<std::string, Case>& cases() {
  static const std::map<std::string, Case> c = {
      {"se_c8_r4",
       {[] { return std::make_shared<ChannelAttention>(8, 4); },
        [](Module& m, const Variable& x) {
          return dynamic_cast<ChannelAttention&>(m).weights(x);
        }}},
      {"se_c6_r4_floor",
       {[] { return std::make_shared<ChannelAttention>(6, 4); },
        [](Module& m, const Variable& x) {
          return dynamic_cast<ChannelAttention&>(m).weights(x);
        }}},
      {"gate_c8_r2",
       {[] { return std::make_shared<ChannelGate>(8, 2); },
        [](Module& m, const Variable& x) { return dynamic_cast<ChannelGate&>(m).weights(x); }}},
      {"spatial_k7",
       {[] { return std::make_shared<SpatialAttention>(7); },
        [](Module& m, const Variable& x) {
          return dynamic_cast<SpatialAttention&>(m).weights(x);
        }}},
      {"spatial_k3",
       {[] { return std::make_shared<SpatialAttention>(3); },
        [](Module& m, const Variable& x) {
          return dynamic_cast<SpatialAttention&>(m).weights(x);
        }}},
      {"cbam_c16_r4_k7",
       {[] { return std::make_shared<CBAM>(CBAMOpts{.channels = 16, .reduction = 4}); },
        [](Module& m, const Variable& x) {
          auto& cbam = dynamic_cast<CBAM&>(m);
          return cbam.sa->weights((*cbam.ca)(x));
        }}},
  };
  return c;
}

TEST(AttentionFixture, ModulesMatchPyTorch) {
  for (const auto& [name, c] : cases()) {
    SCOPED_TRACE(name);
    const io::SafetensorsFile f = attention_fixture(name);
    std::shared_ptr<Module> m = c.make();
    const StateDict want = test::with_prefix(f, "state.");
    const StateDict have = m->state_dict();
    ASSERT_EQ(have.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) {  // PyTorch's keys, order and shapes
      EXPECT_EQ(have[i].first, want[i].first);
      EXPECT_EQ(have[i].second.shape(), want[i].second.shape()) << want[i].first;
    }
    m->load_state_dict(want);  // strict
    const Variable x(f.at("x").to(DType::F32), true);
    const Variable y = (*m)(x);
    test::expect_close(y.value(), f.at("y"), 1e-5, 1e-6, "y");
    test::expect_close(c.attention(*m, x).value(), f.at("a"), 1e-5, 1e-6, "attention map");
    y.backward(f.at("R").to(DType::F32));
    test::expect_close(x.grad(), f.at("grad.x"), 1e-4, 1e-5, "grad.x");
    for (const auto& [key, p] : m->named_parameters())
      test::expect_close(p.grad(), f.at("grad." + key), 1e-4, 1e-5, "grad." + key);
  }
}

TEST(Attention, KeysShapesAndParameterCounts) {
  ChannelAttention se(64, 16);
  const StateDict s = se.state_dict();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].first, "fc.0.weight");
  EXPECT_EQ(s[0].second.shape(), (Shape{4, 64}));
  EXPECT_EQ(s[1].first, "fc.2.weight");
  EXPECT_EQ(s[1].second.shape(), (Shape{64, 4}));
  EXPECT_EQ(count_params(se).total, 512);
  CBAM cbam({.channels = 64, .reduction = 16, .spatial_kernel = 3});
  const StateDict k = cbam.state_dict();
  ASSERT_EQ(k.size(), 3u);
  EXPECT_EQ(k[0].first, "ca.fc.0.weight");
  EXPECT_EQ(k[0].second.shape(), (Shape{4, 64, 1, 1}));
  EXPECT_EQ(k[1].first, "ca.fc.2.weight");
  EXPECT_EQ(k[2].first, "sa.conv1.weight");
  EXPECT_EQ(k[2].second.shape(), (Shape{1, 2, 3, 3}));
  EXPECT_EQ(count_params(cbam).total, 512 + 18);
  // Shapes pass through; maps are in (0, 1).
  const Variable x(Tensor::uniform({2, 64, 5, 7}, -1, 1, 3));
  EXPECT_EQ(cbam(x).shape(), x.shape());
  const Tensor a = cbam.sa->weights(x).value();
  EXPECT_EQ(a.shape(), (Shape{2, 1, 5, 7}));
  for (double v : a.to_vector()) EXPECT_TRUE(v > 0 && v < 1);
}

TEST(Attention, RefusesBadOptionsAndInputs) {
  using convkit::test::expect_error;
  expect_error<InvalidArgument>([] { ChannelAttention(8, 0); },
                                {"ChannelAttention", "reduction", "0"});
  expect_error<InvalidArgument>([] { ChannelAttention(8, 16); },
                                {"ChannelAttention", "8 / 16", "0 hidden"});
  expect_error<InvalidArgument>([] { ChannelAttention(0, 1); }, {"ChannelAttention", "channels"});
  expect_error<InvalidArgument>([] { ChannelGate(4, -2); }, {"ChannelGate", "reduction", "-2"});
  expect_error<InvalidArgument>([] { SpatialAttention(5); }, {"SpatialAttention", "3 or 7", "5"});
  expect_error<InvalidArgument>([] { CBAM({.channels = 8, .reduction = 16}); },
                                {"ChannelGate", "8 / 16"});
  ChannelAttention se(8, 2);
  expect_error<InvalidArgument>(
      [&] {
        se(Variable(Tensor::zeros({2, 6, 3, 3})));
      },
      {"ChannelAttention", "6 channels", "expected 8"});
  expect_error<InvalidArgument>(
      [&] {
        se(Variable(Tensor::zeros({2, 8, 3})));
      },
      {"ChannelAttention", "(N, C, H, W)", "[2, 8, 3]"});
  ChannelGate gate(8, 2);
  expect_error<InvalidArgument>(
      [&] {
        gate(Variable(Tensor::zeros({1, 8, 0, 3})));
      },
      {"ChannelGate", "no pixels"});
}

// The blocks' formulas in float64 with the weights as inputs: every path differentiable.
TEST(AttentionGrad, FormulasInDouble) {
  using ag::test::expect_gradcheck;
  using ag::test::rnd;
  const Variable x = rnd({2, 6, 4, 5}, 1, true, -2, 2);
  const Variable w1 = rnd({3, 6}, 2), w2 = rnd({6, 3}, 3);
  expect_gradcheck(  // SE: x * sigmoid(W2 relu(W1 mean x))
      [](const V& v) {
        const Variable s = ag::reshape(ag::mean(v[0], {2, 3}), {2, 6});
        const Variable a = ag::sigmoid(ag::linear(ag::relu(ag::linear(s, v[1])), v[2]));
        return v[0] * ag::reshape(a, {2, 6, 1, 1});
      },
      {x, w1, w2});
  const Variable c1 = rnd({3, 6, 1, 1}, 4), c2 = rnd({6, 3, 1, 1}, 5);
  expect_gradcheck(  // CBAM channel gate with the global max
      [](const V& v) {
        auto mlp = [&](const Variable& d) {
          return ag::conv2d(ag::relu(ag::conv2d(d, v[1])), v[2]);
        };
        const Variable a =
            ag::sigmoid(mlp(ag::mean(v[0], {2, 3}, true)) + mlp(ag::amax(v[0], {2, 3}, true)));
        return v[0] * a;
      },
      {x, c1, c2});
  const Variable k = rnd({1, 2, 3, 3}, 6);
  expect_gradcheck(  // spatial gate
      [](const V& v) {
        const Variable p = ag::concat({ag::mean(v[0], {1}, true), ag::amax(v[0], {1}, true)}, 1);
        return v[0] * ag::sigmoid(ag::conv2d(p, v[1], {}, {.padding = 1}));
      },
      {x, k});
}

// The snippet of docs/attention.md (keep the two in step).
TEST(DocsAttention, ExampleRuns) {
  ag::Variable x(Tensor::uniform({2, 64, 14, 14}, -1, 1, 1));
  nn::ChannelAttention se(64, 16);
  ag::Variable y = se(x);
  nn::CBAM cbam({.channels = 64, .reduction = 16, .spatial_kernel = 7});
  ag::Variable z = cbam(y);
  ag::Variable a = cbam.sa->weights(cbam.ca->forward(y));
  std::int64_t n = nn::count_params(cbam).total;
  EXPECT_EQ(z.shape(), x.shape());
  EXPECT_EQ(a.shape(), (Shape{2, 1, 14, 14}));
  EXPECT_EQ(n, 610);
  EXPECT_EQ(se.state_dict()[0].first, "fc.0.weight");
}

}  // namespace
}  // namespace convkit::nn
