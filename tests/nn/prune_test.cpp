// nn::prune against torch.nn.utils.prune (masks, iterative and global pruning, training),
// state_dict naming both ways, remove(), structured pruning, the report and bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "convkit/autograd/functional.hpp"
#include "convkit/autograd/gradcheck.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/nn/nn.hpp"
#include "convkit/ops/conv_dispatch.hpp"
#include "convkit/ops/conv_sparse.hpp"
#include "convkit/optim/sgd.hpp"
#include "nn/nn_fixture_util.hpp"
#include "test_util.hpp"

namespace convkit::nn {
namespace {

io::SafetensorsFile fixture(const std::string& name) {
  return io::load_safetensors(std::string(CONVKIT_FIXTURE_DIR) + "/prune/" + name +
                              ".safetensors");
}

std::vector<std::string> keys_of(const StateDict& sd) {
  std::vector<std::string> out;
  for (const auto& [k, t] : sd) out.push_back(k);
  return out;
}

Tensor buffer(const Module& m, const std::string& name) {
  for (const auto& [n, t] : m.named_buffers())
    if (n == name) return t;
  return {};
}

void expect_equal(const Tensor& got, const Tensor& want, const std::string& what) {
  test::expect_close(got, want, 0, 0, what);
}

TEST(Prune, IterativeMagnitudeMasksEqualPyTorch) {
  const auto f = fixture("prune_masks");
  Conv2d a({.in = 4, .out = 6, .kernel = 3});
  a.load_state_dict(test::with_prefix(f, "a.init."));
  prune::magnitude(a, "weight", 0.3);
  prune::magnitude(a, "weight", 0.5);
  expect_equal(buffer(a, "weight_mask"), f.at("mask.a"), "mask after 0.3 then 0.5");
  // 216 entries: round(0.3 * 216) = 65 pruned, then round(0.5 * 151) = 76 (half to even).
  EXPECT_EQ(prune::sparsity_report(a).front().zeros, 141);
  const auto torch_keys = nlohmann::json::parse(f.metadata.at("keys.a")).get<std::vector<std::string>>();
  EXPECT_EQ(keys_of(a.state_dict({.pytorch_prune_names = true})), torch_keys);
  EXPECT_EQ(keys_of(a.state_dict()),
            (std::vector<std::string>{"weight", "bias", "weight_mask"}));
}

TEST(Prune, StructuredMasksEqualPyTorch) {
  const auto f = fixture("prune_masks");
  Conv2d b({.in = 6, .out = 8, .kernel = 3});
  b.load_state_dict(test::with_prefix(f, "b.init."));
  prune::structured(b, "weight", 0.5, prune::Structure::OutputChannels, prune::Norm::L2);
  prune::structured(b, "weight", 2, prune::Structure::InputChannels, prune::Norm::L1);
  expect_equal(buffer(b, "weight_mask"), f.at("mask.b"), "channel masks");
}

TEST(Prune, GlobalMagnitudeEqualsPyTorch) {
  const auto f = fixture("prune_masks");
  Conv2d g0({.in = 4, .out = 6, .kernel = 3});
  Conv2d g1({.in = 6, .out = 8, .kernel = 1});
  Linear g2({.in = 8, .out = 5});
  g0.load_state_dict(test::with_prefix(f, "g0.init."));
  g1.load_state_dict(test::with_prefix(f, "g1.init."));
  g2.load_state_dict(test::with_prefix(f, "g2.init."));
  prune::global_magnitude({{&g0}, {&g1}, {&g2}}, 0.6);
  expect_equal(buffer(g0, "weight_mask"), f.at("mask.g0"), "g0");
  expect_equal(buffer(g1, "weight_mask"), f.at("mask.g1"), "g1");
  expect_equal(buffer(g2, "weight_mask"), f.at("mask.g2"), "g2");
}

TEST(Prune, TrainingKeepsPrunedWeightsZeroLikePyTorch) {
  const auto f = fixture("prune_train");
  Conv2d conv({.in = 4, .out = 6, .kernel = 3, .padding = 1});
  conv.load_state_dict(test::with_prefix(f, "conv.init."));
  prune::magnitude(conv, "weight", 0.5);
  const Tensor mask = buffer(conv, "weight_mask").to(DType::F64);
  optim::SGD opt(conv.parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  ag::Variable y;
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    y = conv(ag::Variable(f.at("x")));
    ag::sum(ag::mul(y, ag::Variable(f.at("r")))).backward();
    const Tensor g = conv.weight.grad().to(DType::F64);
    for (std::int64_t i = 0; i < g.numel(); ++i)
      if (mask.get_flat(i) == 0) {
        ASSERT_EQ(g.get_flat(i), 0) << "gradient of pruned entry " << i;
      }
    opt.step();
    const Tensor w = conv.param("weight").value();
    for (std::int64_t i = 0; i < w.numel(); ++i)
      if (mask.get_flat(i) == 0) {
        ASSERT_EQ(w.get_flat(i), 0) << "step " << step << " entry " << i;
      }
  }
  expect_equal(mask, f.at("mask").to(DType::F64), "mask");
  test::expect_close(y.value(), f.at("y_last"), 1e-5, 1e-5, "last output");
  test::expect_close(conv.weight.value(), f.at("weight_orig"), 1e-5, 1e-6, "weight_orig");
  test::expect_close(conv.bias.value(), f.at("bias"), 1e-5, 1e-6, "bias");
}

TEST(Prune, GradientThroughTheMaskIsChecked) {
  Conv2d conv({.in = 3, .out = 4, .kernel = 3});
  prune::magnitude(conv, "weight", 0.4);
  const Tensor mask = buffer(conv, "weight_mask").to(DType::F64);
  const ag::Variable x(Tensor::uniform({2, 3, 5, 5}, -1, 1, 3, DType::F64));
  const ag::Variable w(conv.weight.value().to(DType::F64), true);
  auto r = ag::gradcheck(
      [&](const std::vector<ag::Variable>& v) {
        return ag::conv2d(x, ag::mul(v[0], ag::Variable(mask)));
      },
      {w});
  EXPECT_TRUE(r) << r.message;
}

TEST(Prune, StateDictLoadsFromEitherNamingAndRemoveIsPermanent) {
  Conv2d a({.in = 3, .out = 5, .kernel = 3});
  prune::structured(a, "weight", 0.4, prune::Structure::Kernels, prune::Norm::L2);
  prune::magnitude(a, "bias", 2);
  Conv2d b({.in = 3, .out = 5, .kernel = 3});
  prune::magnitude(b, "weight", 0.1);
  prune::magnitude(b, "bias", 0.1);
  b.load_state_dict(a.state_dict({.pytorch_prune_names = true}));
  const Tensor x = Tensor::uniform({1, 3, 6, 6}, -1, 1, 4);
  expect_equal(b(ag::Variable(x)).value(), a(ag::Variable(x)).value(), "after PyTorch naming");
  Conv2d c({.in = 3, .out = 5, .kernel = 3});
  prune::magnitude(c, "weight", 0.9);
  prune::magnitude(c, "bias", 0.9);
  c.load_state_dict(a.state_dict());
  expect_equal(c(ag::Variable(x)).value(), a(ag::Variable(x)).value(), "after own naming");

  Conv2d plain({.in = 3, .out = 5, .kernel = 3});
  test::expect_error<InvalidArgument>([&] { plain.load_state_dict(a.state_dict()); },
                                      {"unexpected keys", "weight_mask"});

  const Tensor before = a(ag::Variable(x)).value();
  prune::remove(a, "weight");
  prune::remove(a, "bias");
  EXPECT_FALSE(prune::is_pruned(a));
  EXPECT_EQ(keys_of(a.state_dict()), (std::vector<std::string>{"weight", "bias"}));
  expect_equal(a(ag::Variable(x)).value(), before, "after remove");
  EXPECT_GT(prune::sparsity_report(a).front().zeros, 0);
  plain.load_state_dict(a.state_dict());
}

TEST(Prune, KernelsThresholdAndCustomMask) {
  Conv2d conv({.in = 2, .out = 3, .kernel = 2, .bias = false});
  conv.weight.set_value(Tensor::from_values(
      {3, 2, 2, 2}, {1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1, 2, 2, 2, 2, -0.2, 0.2, 0.2, 0.2,
                     0.05, 3, 3, 3, 0.3, 0.3, -0.3, 0.3}));
  prune::structured(conv, "weight", 2, prune::Structure::Kernels, prune::Norm::L1);
  // Kernel L1 norms 4, 0.4, 8, 0.8, 9.05, 1.2: kernels 1 and 3 go.
  const Tensor m = buffer(conv, "weight_mask");
  for (std::int64_t i = 0; i < 24; ++i)
    EXPECT_EQ(m.get_flat(i), (i / 4 == 1 || i / 4 == 3) ? 0 : 1) << i;
  prune::threshold(conv, "weight", 0.25);  // 0.05 goes; 0.3s stay
  EXPECT_EQ(buffer(conv, "weight_mask").get_flat(16), 0);
  EXPECT_EQ(buffer(conv, "weight_mask").get_flat(20), 1);
  Tensor custom = Tensor::ones({3, 2, 2, 2});
  custom.set_flat(0, 0);
  prune::custom_mask(conv, "weight", custom);
  EXPECT_EQ(prune::sparsity_report(conv).front().zeros, 10);
}

TEST(Prune, GlobalOverAModelAndTheReport) {
  manual_seed(5);
  MobileNetV2 net({.width = 0.25, .num_classes = 10});
  const auto targets = prune::weights_of(net);
  EXPECT_EQ(targets.size(), 53u);  // 52 convolutions and the classifier
  prune::global_magnitude(targets, 0.7);
  const auto rows = prune::sparsity_report(net);
  const prune::SparsityRow& total = rows.back();
  EXPECT_EQ(total.parameter, "total");
  EXPECT_EQ(total.zeros, static_cast<std::int64_t>(std::nearbyint(0.7 * static_cast<double>(total.numel))));
  double lowest = 1, highest = 0;
  for (std::size_t i = 0; i + 1 < rows.size(); ++i) {
    EXPECT_TRUE(rows[i].pruned) << rows[i].parameter;
    lowest = std::min(lowest, rows[i].sparsity());
    highest = std::max(highest, rows[i].sparsity());
  }
  EXPECT_LT(lowest, highest);  // global: layers with small weights lose more
  const std::string table = prune::format_sparsity(rows);
  EXPECT_NE(table.find("features.0.0.weight"), std::string::npos) << table;
  EXPECT_NE(table.find("70.00%"), std::string::npos) << table;
  prune::remove_all(net);
  EXPECT_EQ(prune::sparsity_report(net).back().zeros, total.zeros);
}

TEST(Prune, ConversionsAndFusionUseTheWeightInUse) {
  manual_seed(9);
  Sequential net;
  auto conv = net.push_back(std::make_shared<Conv2d>(ConvOpts{.in = 3, .out = 4, .kernel = 3}));
  auto bn = net.push_back(std::make_shared<BatchNorm2d>(BatchNormOpts{.features = 4}));
  prune::magnitude(*conv, "weight", 0.6);
  const ag::Variable x(Tensor::uniform({2, 3, 6, 6}, -1, 1, 10));
  net(x);  // training-mode pass: running statistics move
  net.eval();
  const Tensor before = net(x).value();
  const Tensor mask = buffer(*conv, "weight_mask");
  EXPECT_EQ(fuse(net).count(), 1);
  test::expect_close(net(x).value(), before, 1e-5, 1e-6, "fused pruned conv");
  const Tensor folded = dynamic_cast<ConvNd&>(net[0]).weight.value();
  for (std::int64_t i = 0; i < folded.numel(); ++i)
    if (mask.get_flat(i) == 0) {
      EXPECT_EQ(folded.get_flat(i), 0) << i;
    }

  Conv2d sym({.in = 2, .out = 4, .kernel = 3, .groups = 2});
  parametrize::register_parametrization(sym, "weight",
                                        parametrize::symmetric(parametrize::Flip::LeftRight));
  const ag::Variable x2(Tensor::uniform({1, 2, 5, 5}, -1, 1, 11));
  test::expect_close(to_dense(sym)->forward(x2).value(), sym(x2).value(), 1e-6, 1e-6,
                     "dense form of a parametrized grouped conv");
}

TEST(Prune, InferenceSkipsTheZerosAboveTheThreshold) {
  manual_seed(12);
  Conv2d conv({.in = 16, .out = 32, .kernel = 3, .padding = 1});
  prune::magnitude(conv, "weight", 0.9);
  const ag::Variable x(Tensor::uniform({2, 16, 10, 10}, -1, 1, 13));
  auto starts = [](const std::string& s, const char* p) { return s.rfind(p, 0) == 0; };
  Tensor sparse, dense;
  {
    ag::NoGradGuard no_grad;
    sparse = conv(x).value();
    EXPECT_TRUE(starts(last_conv_kernel(), "conv_sparse_f32")) << last_conv_kernel();
    const Tensor cl = conv(ag::Variable(x.value().to(MemoryFormat::ChannelsLast))).value();
    EXPECT_TRUE(starts(last_conv_kernel(), "conv_sparse_f32")) << last_conv_kernel();
    test::expect_close(cl, sparse, 1e-5, 1e-5, "channels-last sparse");
    prune::set_sparse_inference(false);
    dense = conv(x).value();
    prune::set_sparse_inference(true);
    EXPECT_FALSE(starts(last_conv_kernel(), "conv_sparse_f32")) << last_conv_kernel();
  }
  test::expect_close(sparse, dense, 1e-5, 1e-5, "sparse vs dense");
  // Training records a gradient: the dense path, whose backward exists.
  ag::sum(conv(x)).backward();
  EXPECT_FALSE(starts(last_conv_kernel(), "conv_sparse_f32")) << last_conv_kernel();
  EXPECT_TRUE(conv.weight.grad().defined());
  // Under the threshold (50% < 65%): dense.
  Conv2d half({.in = 16, .out = 32, .kernel = 3, .padding = 1});
  prune::magnitude(half, "weight", 0.5);
  {
    ag::NoGradGuard no_grad;
    half(x);
    EXPECT_FALSE(starts(last_conv_kernel(), "conv_sparse_f32")) << last_conv_kernel();
    prune::set_sparse_inference(true, 0.4);
    half(x);
    EXPECT_TRUE(starts(last_conv_kernel(), "conv_sparse_f32")) << last_conv_kernel();
    prune::set_sparse_inference(true);
  }
  EXPECT_EQ(prune::sparse_inference_threshold(), kSparseForwardPaysAbove);
  test::expect_error<InvalidArgument>([] { prune::set_sparse_inference(true, 1.5); },
                                      {"threshold must be in [0, 1]", "1.5"});
}

TEST(Prune, BadInputIsRefusedWithTheValues) {
  Conv2d conv({.in = 2, .out = 3, .kernel = 3});
  test::expect_error<InvalidArgument>([&] { prune::magnitude(conv, "weight", 1.5); },
                                      {"amount must be a fraction in [0, 1]", "1.5"});
  test::expect_error<InvalidArgument>([&] { prune::magnitude(conv, "weight", -0.1); },
                                      {"-0.1"});
  test::expect_error<InvalidArgument>([&] { prune::magnitude(conv, "weight", 55); },
                                      {"amount 55", "[0, 54]"});
  test::expect_error<InvalidArgument>([&] { prune::threshold(conv, "weight", -1); },
                                      {"threshold must be finite and >= 0", "-1"});
  test::expect_error<InvalidArgument>(
      [&] { prune::custom_mask(conv, "weight", Tensor::ones({3, 2, 3})); },
      {"mask shape [3, 2, 3] does not match", "[3, 2, 3, 3]"});
  Tensor twos = Tensor::full({3, 2, 3, 3}, 2);
  test::expect_error<InvalidArgument>([&] { prune::custom_mask(conv, "weight", twos); },
                                      {"only 0 and 1", "got 2"});
  test::expect_error<InvalidArgument>([&] { prune::magnitude(conv, "running_mean", 0.5); },
                                      {"cannot be pruned", "weight, bias"});
  BatchNorm2d bn({.features = 3});
  test::expect_error<InvalidArgument>([&] { prune::magnitude(bn, "weight", 0.5); },
                                      {"BatchNorm2d", "cannot be pruned"});
  test::expect_error<InvalidArgument>([&] { prune::remove(conv, "weight"); }, {"is not pruned"});
  test::expect_error<InvalidArgument>(
      [&] { prune::structured(conv, "bias", 1, prune::Structure::Kernels); },
      {"at least 3 dimensions", "[3]"});
  test::expect_error<InvalidArgument>(
      [&] { prune::global_magnitude({{&conv}, {&conv}}, 0.5); }, {"listed twice"});
  parametrize::register_parametrization(conv, "weight", parametrize::non_negative());
  test::expect_error<InvalidArgument>([&] { prune::magnitude(conv, "weight", 0.5); },
                                      {"parametrized"});
}

}  // namespace
}  // namespace convkit::nn
