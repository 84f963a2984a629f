// Module structure without a forward pass: keys and order, load_state_dict, options, counts.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "convkit/nn/nn.hpp"
#include "nn/nn_fixture_util.hpp"
#include "test_util.hpp"

namespace convkit::nn {
namespace {

std::vector<std::string> keys_of(const StateDict& sd) {
  std::vector<std::string> out;
  for (const auto& [k, t] : sd) out.push_back(k);
  return out;
}

std::shared_ptr<Sequential> small_net() {
  auto net = std::make_shared<Sequential>();
  net->push_back(std::make_shared<ConvBNAct>(ConvBNActOpts{.in = 3, .out = 4}));
  net->push_back(std::make_shared<SeparableConv2d>(SeparableOpts{.in = 4, .out = 6}));
  net->push_back(std::make_shared<Flatten>());
  return net;
}

TEST(Module, StateDictKeysFollowPyTorchOrder) {
  auto net = small_net();
  EXPECT_EQ(
      keys_of(net->state_dict()),
      (std::vector<std::string>{"0.0.weight", "0.1.weight", "0.1.bias", "0.1.running_mean",
                                "0.1.running_var", "0.1.num_batches_tracked", "1.depthwise.weight",
                                "1.depthwise.bias", "1.pointwise.weight", "1.pointwise.bias"}));
  const StateDict sd = net->state_dict();
  EXPECT_EQ(sd[5].second.dtype(), DType::I64);
  EXPECT_EQ(sd[5].second.dim(), 0);
  EXPECT_EQ(sd[6].second.shape(), (Shape{4, 1, 3, 3}));
  EXPECT_EQ(net->parameters().size(), 7u);
  EXPECT_EQ(net->named_buffers().size(), 3u);
}

TEST(Module, TrainEvalIsRecursive) {
  auto net = small_net();
  EXPECT_TRUE((*net)[0].is_training());
  net->eval();
  for (auto& [path, m] : net->named_modules()) EXPECT_FALSE(m->is_training()) << path;
  net->train();
  for (auto& [path, m] : net->named_modules()) EXPECT_TRUE(m->is_training()) << path;
}

TEST(Module, SequentialReplaceKeepsPlaceAndTakesTrainingMode) {
  auto net = small_net();
  net->eval();
  auto conv_bn = std::dynamic_pointer_cast<Sequential>(net->at(0));
  ASSERT_NE(conv_bn, nullptr);
  conv_bn->replace(1, std::make_shared<Identity>());
  EXPECT_EQ(conv_bn->at(1)->type_name(), "Identity");
  EXPECT_FALSE(conv_bn->at(1)->is_training());
  EXPECT_EQ(keys_of(net->state_dict())[0], "0.0.weight");
  EXPECT_EQ(keys_of(net->state_dict())[1], "1.depthwise.weight");  // the BN keys are gone
  test::expect_error<InvalidArgument>([&] { conv_bn->replace(5, std::make_shared<Identity>()); },
                                     {"index 5 out of range"});
  test::expect_error<InvalidArgument>([&] { conv_bn->replace(0, nullptr); }, {"is null"});
}

TEST(Module, LoadStateDictRoundTripsAndSharesStorage) {
  manual_seed(1);
  auto a = small_net();
  manual_seed(2);
  auto b = small_net();
  EXPECT_FALSE(allclose(a->state_dict()[0].second, b->state_dict()[0].second));
  b->load_state_dict(a->state_dict());
  const StateDict sa = a->state_dict(), sb = b->state_dict();
  for (std::size_t i = 0; i < sa.size(); ++i)
    EXPECT_TRUE(allclose(sa[i].second.to(DType::F64), sb[i].second.to(DType::F64), 0, 0))
        << sa[i].first;
  // The state dict views the parameters: writing into it changes the module.
  sb[0].second.fill(3.0);
  EXPECT_EQ(b->parameters()[0].value().get_flat(0), 3.0);
}

TEST(Module, LoadStateDictListsEveryProblemAndChangesNothing) {
  auto net = small_net();
  StateDict sd = net->state_dict();
  const double before = sd[0].second.get_flat(0);
  StateDict bad;
  for (const auto& [k, t] : sd) {
    if (k == "0.1.running_var") continue;  // missing
    if (k == "1.pointwise.weight")
      bad.emplace_back(k, Tensor::zeros({6, 4}));  // mismatch
    else
      bad.emplace_back(k, Tensor::zeros(t.shape(), t.dtype()));
  }
  bad.emplace_back("2.weight", Tensor::zeros({1}));  // unexpected
  test::expect_error<InvalidArgument>(
      [&] { net->load_state_dict(bad); },
      {"missing keys: [0.1.running_var]", "unexpected keys: [2.weight]",
       "1.pointwise.weight (model [6, 4, 1, 1], given [6, 4])"});
  EXPECT_EQ(net->state_dict()[0].second.get_flat(0), before);
  // Non-strict tolerates missing and unexpected keys, never a shape mismatch.
  test::expect_error<InvalidArgument>([&] { net->load_state_dict(bad, false); },
                                      {"shape mismatch"});
  bad.erase(std::remove_if(bad.begin(), bad.end(),
                           [](const auto& kv) { return kv.first == "1.pointwise.weight"; }),
            bad.end());
  net->load_state_dict(bad, /*strict=*/false);
  EXPECT_EQ(net->state_dict()[0].second.get_flat(0), 0.0);
}

TEST(Module, OptionsAreValidated) {
  test::expect_error<InvalidArgument>([] { Conv2d({.in = 6, .out = 4, .kernel = 3, .groups = 4}); },
                                      {"in 6", "groups 4"});
  test::expect_error<InvalidArgument>(
      [] {
        Conv2d({.in = 4, .out = 4, .kernel = {3, 3, 3}});
      },
      {"kernel", "1 or 2"});
  test::expect_error<InvalidArgument>([] { Conv2d({.in = 4, .out = 4, .stride = 0}); }, {"stride"});
  test::expect_error<InvalidArgument>([] { Conv2d({.in = 4, .out = 4, .output_padding = 1}); },
                                      {"output_padding"});
  test::expect_error<InvalidArgument>([] { BatchNorm2d({.features = 0}); }, {"features"});
  test::expect_error<InvalidArgument>([] { Dropout(1.5); }, {"p must be in [0, 1]", "1.5"});
  test::expect_error<InvalidArgument>([] { InvertedResidual(8, 8, 3, 6); }, {"stride", "3"});
  test::expect_error<InvalidArgument>([] { MobileNetV2({.width = 0}); }, {"width"});
}

// Even kernels keep the size under 'same' (one more row/column padded after, like PyTorch),
// stride 2 with 'same' gives ceil(in / 2), explicit padding follows the conv formula, and the
// layer equals its two convolutions called by hand.
TEST(Module, SpatiallySeparableConvSizesAndValues) {
  const ag::Variable x(Tensor::uniform({2, 3, 9, 7}, -1, 1, 4), false);
  SpatiallySeparableConv2d even(3, 5, 4);
  EXPECT_EQ(even(x).shape(), (Shape{2, 5, 9, 7}));
  EXPECT_EQ(even.vertical->weight.shape(), (Shape{5, 3, 4, 1}));
  EXPECT_EQ(even.horizontal->weight.shape(), (Shape{5, 5, 1, 4}));
  const ag::Variable by_hand =
      ag::conv2d(ag::conv2d(x, even.vertical->weight, even.vertical->bias,
                            {.padding = Padding::asymmetric({1, 0}, {2, 0})}),
                 even.horizontal->weight, even.horizontal->bias,
                 {.padding = Padding::asymmetric({0, 1}, {0, 2})});
  test::expect_close(even(x).value(), by_hand.value(), 1e-6, 1e-6, "k = 4, 'same'");
  SpatiallySeparableConv2d s2({.in = 3, .out = 4, .kernel = 3, .stride = 2});
  EXPECT_EQ(s2(x).shape(), (Shape{2, 4, 5, 4}));
  SpatiallySeparableConv2d p0(
      {.in = 3, .out = 4, .kernel = 5, .stride = 2, .padding = 0, .dilation = 1});
  EXPECT_EQ(p0(x).shape(), (Shape{2, 4, 3, 2}));
  SpatiallySeparableConv2d d2(
      {.in = 3, .out = 4, .kernel = 3, .padding = 2, .dilation = 2, .bias = false});
  EXPECT_EQ(d2(x).shape(), (Shape{2, 4, 9, 7}));
  EXPECT_FALSE(d2.vertical->bias.defined());
  test::expect_error<InvalidArgument>(
      [] { SpatiallySeparableConv2d({.in = 3, .out = 4, .kernel = 0}); },
      {"SpatiallySeparableConv2d", "kernel", "0"});
  test::expect_error<InvalidArgument>(
      [] { SpatiallySeparableConv2d({.in = 3, .out = 4, .padding = -2}); }, {"padding", "-2"});
}

TEST(Module, ConvShapesAndPyTorchDefaultInit) {
  Conv2d dw({.in = 32, .out = 32, .kernel = 3, .groups = 32});
  EXPECT_EQ(dw.weight.shape(), (Shape{32, 1, 3, 3}));
  ConvTranspose2d t({.in = 4, .out = 6, .kernel = {3, 2}, .groups = 2});
  EXPECT_EQ(t.weight.shape(), (Shape{4, 3, 3, 2}));
  DepthwiseConv2d m2({.channels = 4, .multiplier = 2});
  EXPECT_EQ(m2.weight.shape(), (Shape{8, 1, 3, 3}));
  Conv3d c3({.in = 2, .out = 3, .kernel = {1, 2, 3}, .bias = false});
  EXPECT_EQ(c3.weight.shape(), (Shape{3, 2, 1, 2, 3}));
  EXPECT_FALSE(c3.bias.defined());
  // kaiming_uniform(a = sqrt(5)) and the bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in 9*16.
  Conv2d c({.in = 16, .out = 64, .kernel = 3});
  const double bound = 1.0 / std::sqrt(16.0 * 9.0);
  double max_w = 0, max_b = 0;
  for (double v : c.weight.value().to_vector()) max_w = std::max(max_w, std::abs(v));
  for (double v : c.bias.value().to_vector()) max_b = std::max(max_b, std::abs(v));
  EXPECT_LE(max_w, bound);
  EXPECT_GT(max_w, 0.9 * bound);
  EXPECT_LE(max_b, bound);
  Linear l({.in = 100, .out = 50});
  for (double v : l.weight.value().to_vector()) EXPECT_LE(std::abs(v), 0.1);
  ChannelScale s(5, true);
  EXPECT_EQ(s.weight.shape(), (Shape{5, 1, 1, 1}));
  EXPECT_EQ(s.weight.value().get_flat(3), 1.0);
}

TEST(Module, ManualSeedMakesInitReproducible) {
  manual_seed(42);
  Conv2d a({.in = 3, .out = 4, .kernel = 3});
  manual_seed(42);
  Conv2d b({.in = 3, .out = 4, .kernel = 3});
  EXPECT_TRUE(allclose(a.weight.value(), b.weight.value(), 0, 0));
}

TEST(MobileNet, MakeDivisibleLikeTorchvision) {
  EXPECT_EQ(make_divisible(32 * 0.35), 16);
  EXPECT_EQ(make_divisible(16 * 0.35), 8);
  EXPECT_EQ(make_divisible(24 * 0.35), 8);
  EXPECT_EQ(make_divisible(96 * 0.35), 32);
  EXPECT_EQ(make_divisible(160 * 0.35), 56);
  EXPECT_EQ(make_divisible(320 * 0.75), 240);
  EXPECT_EQ(make_divisible(1280 * 1.4), 1792);
  EXPECT_EQ(make_divisible(3.0), 8);
}

TEST(MobileNet, V2KeysAndShapesEqualTorchvision) {
  const io::SafetensorsFile file = test::nn_fixture("keys_mobilenet_v2");
  const auto keys = nlohmann::json::parse(file.metadata.at("keys"));
  MobileNetV2 model;
  const StateDict sd = model.state_dict();
  ASSERT_EQ(sd.size(), keys.size());
  for (std::size_t i = 0; i < sd.size(); ++i) {
    EXPECT_EQ(sd[i].first, keys[i][0].get<std::string>()) << "entry " << i;
    const auto dims = keys[i][1].get<std::vector<std::int64_t>>();
    EXPECT_EQ(sd[i].second.shape(), Shape(std::span<const std::int64_t>(dims))) << sd[i].first;
  }
  EXPECT_EQ(sd.front().first, "features.0.0.weight");
  EXPECT_EQ(sd[6].first, "features.1.conv.0.0.weight");
  EXPECT_EQ(sd.back().first, "classifier.1.bias");
}

TEST(MobileNet, V2ParameterCounts) {
  MobileNetV2 model;
  std::int64_t n = 0;
  for (const auto& p : model.parameters()) n += p.numel();
  EXPECT_EQ(n, 3'504'872);
  const ParamCount c = count_params(model);
  EXPECT_EQ(c.trainable, 3'504'872);
  EXPECT_EQ(c.non_trainable, 34'112);  // BatchNorm running mean and variance, as Keras counts
  EXPECT_EQ(c.total, 3'538'984);
  // torchvision's init: BN ones/zeros, classifier bias zero, classifier weight N(0, 0.01).
  auto* lin = dynamic_cast<Linear*>(&(*model.classifier)[1]);
  ASSERT_NE(lin, nullptr);
  EXPECT_EQ(lin->bias.value().get_flat(7), 0.0);
  double sq = 0;
  for (double v : lin->weight.value().to_vector()) sq += v * v;
  EXPECT_NEAR(std::sqrt(sq / 1'280'000.0), 0.01, 0.0005);
}

TEST(MobileNet, V2StructureAtWidth035) {
  MobileNetV2 model({.width = 0.35, .num_classes = 10});
  EXPECT_EQ(model.features->size(), 19u);
  auto* first = dynamic_cast<InvertedResidual*>(&(*model.features)[1]);
  auto* res = dynamic_cast<InvertedResidual*>(&(*model.features)[3]);
  ASSERT_TRUE(first && res);
  EXPECT_FALSE(first->use_residual());
  EXPECT_TRUE(res->use_residual());
  EXPECT_EQ(first->conv->size(), 3u);  // expand ratio 1: no expansion layer
  EXPECT_EQ(res->conv->size(), 4u);
}

TEST(MobileNet, V1Structure) {
  MobileNetV1 model;
  const StateDict sd = model.state_dict();
  EXPECT_EQ(sd.front().first, "features.0.0.weight");
  EXPECT_EQ(sd[6].first, "features.1.0.0.weight");
  EXPECT_EQ(sd[6].second.shape(), (Shape{32, 1, 3, 3}));
  EXPECT_EQ(sd.back().first, "classifier.1.bias");
  // 3x3 conv 864, 13 separable blocks, 1024 -> 1000 classifier, BN affine: the standard
  // 4,231,976 trainable parameters of MobileNetV1 with batch norm.
  EXPECT_EQ(count_params(model).trainable, 4'231'976);
}

}  // namespace
}  // namespace convkit::nn

namespace convkit::nn {
namespace {

TEST(Module, LoadStateDictConvertsDtypes) {
  BatchNorm2d bn({.features = 2});
  StateDict sd;
  for (const auto& [k, t] : bn.state_dict())
    sd.emplace_back(k, Tensor::full(t.shape(), 3, DType::F64));
  bn.load_state_dict(sd);
  EXPECT_EQ(bn.running_var.dtype(), DType::F32);
  EXPECT_EQ(bn.running_var.get_flat(1), 3.0);
  EXPECT_EQ(bn.num_batches_tracked.dtype(), DType::I64);
  EXPECT_EQ(bn.num_batches_tracked.get_flat(0), 3.0);
}

TEST(Module, BatchNormCountsTrainingBatchesOnly) {
  BatchNorm2d bn({.features = 2});
  ag::Variable x(Tensor::uniform({3, 2, 2, 2}, -1, 1, 5));
  bn(x);
  bn(x);
  bn.eval();
  bn(x);
  EXPECT_EQ(bn.num_batches_tracked.get_flat(0), 2.0);
}

TEST(MobileNet, V1ForwardShapeAtQuarterWidth) {
  MobileNetV1 model({.width = 0.25, .num_classes = 7});
  model.eval();
  ag::NoGradGuard no_grad;
  EXPECT_EQ(model(ag::Variable(Tensor::uniform({2, 3, 32, 32}, -1, 1, 3))).shape(), (Shape{2, 7}));
}

}  // namespace
}  // namespace convkit::nn
