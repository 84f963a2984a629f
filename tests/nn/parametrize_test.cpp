// nn::parametrize against torch.nn.utils.parametrize (keys, outputs, gradients, SGD steps),
// the built-in kernel constraints holding exactly after training, gradchecks, bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "convkit/autograd/functional.hpp"
#include "convkit/autograd/gradcheck.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/nn/nn.hpp"
#include "convkit/optim/adam.hpp"
#include "convkit/optim/sgd.hpp"
#include "nn/nn_fixture_util.hpp"
#include "test_util.hpp"

namespace convkit::nn {
namespace {

using parametrize::Flip;
using parametrize::Positive;
using parametrize::Rotation;

std::vector<std::string> keys_of(const StateDict& sd) {
  std::vector<std::string> out;
  for (const auto& [k, t] : sd) out.push_back(k);
  return out;
}

std::shared_ptr<parametrize::Parametrization> torch_case(const std::string& name) {
  if (name == "lr") return parametrize::symmetric(Flip::LeftRight);
  if (name == "quarter") return parametrize::rotation_symmetric(Rotation::Quarter);
  return parametrize::non_negative(Positive::Softplus);
}

TEST(Parametrize, MatchesPyTorchKeysOutputsGradientsAndSteps) {
  const auto f = io::load_safetensors(std::string(CONVKIT_FIXTURE_DIR) +
                                      "/prune/parametrize.safetensors");
  const ag::Variable x(f.at("x"));
  for (const std::string name : {"lr", "quarter", "softplus"}) {
    SCOPED_TRACE(name);
    Conv2d conv({.in = 3, .out = 4, .kernel = 5});
    conv.load_state_dict(test::with_prefix(f, name + ".init."));
    parametrize::register_parametrization(conv, "weight", torch_case(name));
    EXPECT_EQ(keys_of(conv.state_dict()),
              nlohmann::json::parse(f.metadata.at("keys." + name)).get<std::vector<std::string>>());
    test::expect_close(conv.weight.value(), f.at(name + ".original"), 1e-6, 1e-6, "original");
    optim::SGD opt(conv.parameters(), {.lr = 0.05});
    ag::Variable y = conv(x);
    test::expect_close(y.value(), f.at(name + ".y"), 1e-5, 1e-5, "output");
    ag::sum(ag::mul(y, ag::Variable(f.at("r")))).backward();
    test::expect_close(conv.weight.grad(), f.at(name + ".grad_original"), 1e-4, 1e-4,
                       "gradient of the original");
    opt.step();
    opt.zero_grad();
    ag::sum(ag::mul(conv(x), ag::Variable(f.at("r")))).backward();
    opt.step();
    test::expect_close(conv.param("weight").value(), f.at(name + ".weight_after"), 1e-4, 1e-5,
                       "weight after 2 steps");
  }
}

// Every kernel of w, read as (rows, kh, kw), equals itself under `same` exactly.
template <typename Same>
void expect_exact(const Tensor& w, Same same) {
  const std::int64_t kh = w.size(w.dim() - 2), kw = w.size(w.dim() - 1);
  const std::int64_t rows = w.numel() / (kh * kw);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t y = 0; y < kh; ++y)
      for (std::int64_t x = 0; x < kw; ++x) {
        auto [yy, xx] = same(y, x, kh, kw);
        ASSERT_EQ(w.get_flat((r * kh + y) * kw + x), w.get_flat((r * kh + yy) * kw + xx))
            << "kernel " << r << " at (" << y << ", " << x << ") vs (" << yy << ", " << xx << ")";
      }
}

// Trains a parametrized conv with AdamW for a few steps and returns the weight it uses.
Tensor trained(std::shared_ptr<parametrize::Parametrization> p, std::int64_t k) {
  manual_seed(11);
  Conv2d conv({.in = 3, .out = 4, .kernel = k, .padding = Padding::same()});
  parametrize::register_parametrization(conv, "weight", std::move(p));
  optim::AdamW opt(conv.parameters(), {.lr = 0.05});
  const ag::Variable x(Tensor::uniform({2, 3, 8, 8}, -1, 1, 12));
  const ag::Variable target(Tensor::uniform({2, 4, 8, 8}, -1, 1, 13));
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    ag::mse_loss(conv(x), target).backward();
    opt.step();
  }
  return conv.param("weight").value();
}

TEST(Parametrize, ConstraintsHoldExactlyAfterTraining) {
  expect_exact(trained(parametrize::symmetric(Flip::LeftRight), 5),
               [](auto y, auto x, auto, auto kw) { return std::pair{y, kw - 1 - x}; });
  expect_exact(trained(parametrize::symmetric(Flip::UpDown), 4),
               [](auto y, auto x, auto kh, auto) { return std::pair{kh - 1 - y, x}; });
  const Tensor both = trained(parametrize::symmetric(Flip::Both), 3);
  expect_exact(both, [](auto y, auto x, auto kh, auto kw) { return std::pair{kh - 1 - y, kw - 1 - x}; });
  expect_exact(both, [](auto y, auto x, auto, auto kw) { return std::pair{y, kw - 1 - x}; });
  expect_exact(trained(parametrize::rotation_symmetric(Rotation::Quarter), 5),
               [](auto y, auto x, auto k, auto) { return std::pair{x, k - 1 - y}; });
  const Tensor radial = trained(parametrize::rotation_symmetric(Rotation::Radial), 5);
  // Distance 5 from the centre of a 5x5 kernel is (0, 2)... every position with the same
  // squared distance holds one value: (0, 1) and (1, 0), (0, 0) and (4, 4), (1, 2) and (2, 1).
  expect_exact(radial, [](auto y, auto x, auto, auto) { return std::pair{x, y}; });
  expect_exact(radial, [](auto y, auto x, auto k, auto) { return std::pair{k - 1 - y, x}; });
  for (std::int64_t r = 0; r < 12; ++r)  // (0, 1) and (1, 0) are 2.24 away; so is (0, 3)
    EXPECT_EQ(radial.get_flat(r * 25 + 1), radial.get_flat(r * 25 + 3));
  const Tensor positive = trained(parametrize::non_negative(Positive::Abs), 3);
  for (std::int64_t i = 0; i < positive.numel(); ++i) ASSERT_GE(positive.get_flat(i), 0);
  const Tensor soft = trained(parametrize::non_negative(Positive::Softplus), 3);
  for (std::int64_t i = 0; i < soft.numel(); ++i) ASSERT_GE(soft.get_flat(i), 0);
}

TEST(Parametrize, FixedEntriesStayAndTheRestTrains) {
  manual_seed(3);
  Conv2d conv({.in = 2, .out = 2, .kernel = 3, .padding = 1});
  const Tensor before = conv.weight.value().clone();
  // The centre tap of every kernel fixed to -1 (a (3, 3) mask broadcast to every kernel).
  Tensor mask = Tensor::zeros({3, 3}), values = Tensor::zeros({3, 3});
  mask.set_flat(4, 1);
  values.set_flat(4, -1);
  parametrize::register_parametrization(conv, "weight", parametrize::fixed_entries(mask, values));
  EXPECT_EQ(keys_of(conv.state_dict()),
            (std::vector<std::string>{"bias", "parametrizations.weight.original",
                                      "parametrizations.weight.0.mask",
                                      "parametrizations.weight.0.values"}));
  optim::SGD opt(conv.parameters(), {.lr = 0.1});
  const ag::Variable x(Tensor::uniform({1, 2, 5, 5}, -1, 1, 4));
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    ag::sum(ag::mul(conv(x), conv(x))).backward();
    opt.step();
  }
  const Tensor w = conv.param("weight").value();
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    if (i % 9 == 4) EXPECT_EQ(w.get_flat(i), -1) << i;
    else EXPECT_NE(w.get_flat(i), before.get_flat(i)) << i;
  }
}

TEST(Parametrize, StackingRemovingAndFreezing) {
  manual_seed(4);
  Conv2d conv({.in = 2, .out = 3, .kernel = 3});
  parametrize::register_parametrization(conv, "weight", parametrize::symmetric(Flip::LeftRight));
  parametrize::register_parametrization(conv, "weight", parametrize::non_negative());
  parametrize::register_parametrization(
      conv, "bias", parametrize::from_function("Scaled", [](const ag::Variable& b) {
        return ag::mul(b, 3.0);
      }));
  EXPECT_TRUE(parametrize::is_parametrized(conv, "weight"));
  EXPECT_EQ(keys_of(conv.state_dict()),
            (std::vector<std::string>{"parametrizations.weight.original",
                                      "parametrizations.bias.original"}));
  const ag::Variable x(Tensor::uniform({1, 2, 4, 4}, -1, 1, 5));
  const Tensor y = conv(x).value();
  const Tensor w = conv.param("weight").value();
  parametrize::remove_parametrizations(conv, "weight");
  parametrize::remove_parametrizations(conv, "bias");
  EXPECT_FALSE(parametrize::is_parametrized(conv));
  EXPECT_EQ(keys_of(conv.state_dict()), (std::vector<std::string>{"weight", "bias"}));
  test::expect_close(conv.weight.value(), w, 0, 0, "weight kept parametrized value");
  test::expect_close(conv(x).value(), y, 0, 0, "same output after remove");

  parametrize::register_parametrization(conv, "weight", parametrize::non_negative());
  Conv2d other({.in = 2, .out = 3, .kernel = 3});
  parametrize::register_parametrization(other, "weight", parametrize::non_negative());
  other.load_state_dict(conv.state_dict());
  test::expect_close(other(x).value(), conv(x).value(), 0, 0, "loaded parametrized");
  parametrize::remove_parametrizations(conv, "weight", /*leave_parametrized=*/false);

  freeze(conv, "weight");
  EXPECT_EQ(count_params(conv).trainable, 3);
  optim::SGD opt(conv.parameters(), {.lr = 0.1});
  const Tensor frozen = conv.weight.value().clone();
  ag::sum(conv(x)).backward();
  opt.step();
  test::expect_close(conv.weight.value(), frozen, 0, 0, "frozen weight");
  unfreeze(conv, "weight");
  EXPECT_EQ(count_params(conv).trainable, 57);
}

TEST(Parametrize, SummaryKeepsAParametrizedLayerAsOneRow) {
  Sequential net;
  auto conv = net.push_back(std::make_shared<Conv2d>(ConvOpts{.in = 3, .out = 4, .kernel = 3}));
  net.push_back(std::make_shared<ReLU>());
  parametrize::register_parametrization(*conv, "weight", parametrize::symmetric(Flip::Both));
  const Summary s = summary(net, {1, 3, 8, 8});
  ASSERT_EQ(s.rows.size(), 2u);
  EXPECT_EQ(s.rows[0].name, "0");
  EXPECT_EQ(s.rows[0].params, 112);
  EXPECT_EQ(s.rows[0].receptive_field, (std::vector<std::int64_t>{3, 3}));
  const Summary alone = summary(*conv, {1, 3, 8, 8});
  ASSERT_EQ(alone.rows.size(), 1u);
  EXPECT_EQ(alone.rows[0].name, "Conv2d");
  EXPECT_EQ(alone.total_macs, 4 * 27 * 36);
}

TEST(Parametrize, GradientsAreChecked) {
  const ag::Variable x(Tensor::uniform({2, 2, 6, 6}, -1, 1, 6, DType::F64));
  const ag::Variable w(Tensor::uniform({3, 2, 4, 4}, -1, 1, 7, DType::F64), true);
  for (auto p : {parametrize::symmetric(Flip::Both), parametrize::rotation_symmetric(Rotation::Quarter),
                 parametrize::rotation_symmetric(Rotation::Radial),
                 parametrize::non_negative(Positive::Softplus)}) {
    auto r = ag::gradcheck(
        [&](const std::vector<ag::Variable>& v) { return ag::conv2d(x, p->forward(v[0])); }, {w});
    EXPECT_TRUE(r) << p->type_name() << ": " << r.message;
  }
  // abs away from its kink at 0.
  const ag::Variable a(Tensor::uniform({20}, 0.1, 1, 8, DType::F64), true);
  auto r = ag::gradcheck([](const std::vector<ag::Variable>& v) {
    return ag::abs(ag::mul(v[0], ag::Variable(Tensor::from_values({20}, std::vector<double>(20, -1.0), DType::F64))));
  }, {a});
  EXPECT_TRUE(r) << r.message;
  auto t = ag::gradcheck([](const std::vector<ag::Variable>& v) { return ag::tie_mean(v[0], {0, 1, 0, 2, 1, 0}); },
                         {ag::Variable(Tensor::uniform({4, 6}, -1, 1, 9, DType::F64), true)});
  EXPECT_TRUE(t) << t.message;
}

TEST(Parametrize, BadInputIsRefusedWithTheValues) {
  Conv2d conv({.in = 2, .out = 3, .kernel = {3, 5}});
  test::expect_error<InvalidArgument>(
      [&] {
        parametrize::register_parametrization(conv, "weight",
                                              parametrize::rotation_symmetric(Rotation::Quarter));
      },
      {"must be square", "3x5"});
  EXPECT_FALSE(parametrize::is_parametrized(conv));  // nothing changed
  Conv1d line({.in = 2, .out = 2, .kernel = 3});
  test::expect_error<InvalidArgument>(
      [&] { parametrize::register_parametrization(line, "weight", parametrize::symmetric(Flip::UpDown)); },
      {"needs a 2-D kernel", "[2, 2, 3]"});
  test::expect_error<InvalidArgument>(
      [&] {
        parametrize::register_parametrization(
            conv, "weight", parametrize::from_function("Shrink", [](const ag::Variable& w) {
              return ag::sum(w, {0});
            }));
      },
      {"Shrink", "must keep its shape [3, 2, 3, 5]", "[2, 3, 5]"});
  BatchNorm2d bn({.features = 2});
  test::expect_error<InvalidArgument>(
      [&] { parametrize::register_parametrization(bn, "weight", parametrize::non_negative()); },
      {"BatchNorm2d", "cannot be parametrized"});
  test::expect_error<InvalidArgument>(
      [&] { parametrize::fixed_entries(Tensor::full({2}, 0.5), Tensor::zeros({2})); },
      {"only 0 and 1", "0.5"});
  test::expect_error<InvalidArgument>(
      [&] { parametrize::fixed_entries(Tensor::ones({2}), Tensor::zeros({3})); },
      {"same shape"});
  test::expect_error<InvalidArgument>([&] { parametrize::remove_parametrizations(conv, "weight"); },
                                      {"is not parametrized"});
  test::expect_error<InvalidArgument>([&] { freeze(conv, "gamma"); }, {"no parameter 'gamma'"});
  prune::magnitude(conv, "weight", 0.5);
  test::expect_error<InvalidArgument>(
      [&] { parametrize::register_parametrization(conv, "weight", parametrize::non_negative()); },
      {"is pruned", "prune::remove"});
  test::expect_error<InvalidArgument>([] { (void)ag::tie_mean(ag::Variable(Tensor::ones({5})), {0, 1}); },
                                      {"5 elements", "multiple of the 2 positions"});
}

}  // namespace
}  // namespace convkit::nn
