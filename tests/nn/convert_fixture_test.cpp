// Conversions checked against PyTorch (tests/fixtures/convert, written by
// tools/fixtures/make_convert_fixtures.py) and BatchNorm fusion of whole models.
#include <gtest/gtest.h>

#include <string>

#include "convkit/io/safetensors.hpp"
#include "convkit/nn/convert.hpp"
#include "convkit/nn/mobilenet.hpp"
#include "convkit/ops/conv.hpp"
#include "nn/nn_fixture_util.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

io::SafetensorsFile fixture(const std::string& name) {
  return io::load_safetensors(std::string(CONVKIT_FIXTURE_DIR) + "/convert/" + name +
                              ".safetensors");
}

nn::StateDict pick(const io::SafetensorsFile& f, const std::vector<std::string>& keys,
                   const std::string& file_prefix = "") {
  nn::StateDict sd;
  for (const auto& k : keys)
    if (f.contains(file_prefix + k)) sd.emplace_back(k, f.at(file_prefix + k));
  return sd;
}

struct BnCase {
  const char* name;
  int nd;
  std::int64_t in, out, k, stride, padding, dilation, groups;
  bool bias, affine;
};

TEST(ConvertFixture, FoldBatchNormMatchesTorchFuseConvBnEval) {
  const std::vector<BnCase> cases{
      {"bn_conv2d_nobias", 2, 4, 6, 3, 1, 1, 1, 1, false, true},
      {"bn_conv2d_g3_s2_bias_eps", 2, 6, 9, 3, 2, 1, 1, 3, true, true},
      {"bn_depthwise_d2_noaffine", 2, 5, 10, 3, 1, 2, 2, 5, true, false},
      {"bn_conv1d", 1, 3, 4, 5, 2, 2, 1, 1, true, true}};
  for (const BnCase& c : cases) {
    SCOPED_TRACE(c.name);
    const io::SafetensorsFile f = fixture(c.name);
    const double eps = f.at("eps").get_flat(0);
    const nn::ConvOpts co{.in = c.in,
                          .out = c.out,
                          .kernel = c.k,
                          .stride = c.stride,
                          .padding = c.padding,
                          .dilation = c.dilation,
                          .groups = c.groups,
                          .bias = c.bias};
    std::shared_ptr<nn::ConvNd> conv =
        c.nd == 1 ? std::shared_ptr<nn::ConvNd>(std::make_shared<nn::Conv1d>(co))
                  : std::make_shared<nn::Conv2d>(co);
    nn::BatchNorm bn(c.nd, {.features = c.out, .eps = eps, .affine = c.affine});
    conv->load_state_dict(pick(f, {"weight", "bias"}, "conv."));
    bn.load_state_dict(pick(f, {"weight", "bias", "running_mean", "running_var"}, "bn."), false);
    conv->eval();
    bn.eval();
    const ag::Variable x(f.at("x"));
    test::expect_close(bn((*conv)(x)).value(), f.at("out"), 1e-5, 1e-5, "bn(conv(x))");
    auto folded = nn::fold_batch_norm(*conv, bn);
    EXPECT_FALSE(folded->is_training());
    EXPECT_EQ(folded->options().groups, c.groups);
    test::expect_close(folded->weight.value(), f.at("fused.weight"), 1e-6, 1e-7, "weight");
    test::expect_close(folded->bias.value(), f.at("fused.bias"), 1e-6, 1e-7, "bias");
    test::expect_close((*folded)(x).value(), f.at("fused_out"), 1e-5, 1e-5, "fused(x)");
    // The tensor form in double, from the same float32 inputs.
    const nn::ConvParams p = nn::fold_batch_norm(
        nn::ConvParams{.weight = f.at("conv.weight").to(DType::F64),
                       .bias = c.bias ? f.at("conv.bias").to(DType::F64) : Tensor{}},
        nn::BatchNormParams{.weight = c.affine ? f.at("bn.weight") : Tensor{},
                            .bias = c.affine ? f.at("bn.bias") : Tensor{},
                            .running_mean = f.at("bn.running_mean"),
                            .running_var = f.at("bn.running_var"),
                            .eps = eps});
    EXPECT_EQ(p.weight.dtype(), DType::F64);
    test::expect_close(p.weight, f.at("fused.weight"), 1e-6, 1e-7, "F64 weight");
    test::expect_close(p.bias, f.at("fused.bias"), 1e-6, 1e-7, "F64 bias");
  }
}

struct SepCase {
  const char* name;
  std::int64_t in, mult, out, k, stride, padding, dilation;  // padding -1: 'same'
  PaddingMode mode;
};

TEST(ConvertFixture, SeparableToDenseMatchesTorchEinsum) {
  const std::vector<SepCase> cases{{"sep_k3_s2_m2", 3, 2, 5, 3, 2, 1, 1, PaddingMode::Zeros},
                                   {"sep_k5_d2_reflect", 4, 1, 3, 5, 1, 4, 2, PaddingMode::Reflect},
                                   {"sep_k3_same_m3", 2, 3, 4, 3, 1, -1, 1, PaddingMode::Zeros}};
  for (const SepCase& c : cases) {
    SCOPED_TRACE(c.name);
    const io::SafetensorsFile f = fixture(c.name);
    const Padding pad = c.padding < 0 ? Padding::same() : Padding(c.padding);
    // Tensor form, double: the weights PyTorch built, and its output.
    const nn::ConvParams one =
        nn::compose({.weight = f.at("depthwise.weight"),
                     .bias = f.at("depthwise.bias"),
                     .options = {.stride = {c.stride},
                                 .padding = pad,
                                 .dilation = {c.dilation},
                                 .groups = c.in,
                                 .padding_mode = c.mode}},
                    {.weight = f.at("pointwise.weight"), .bias = f.at("pointwise.bias")});
    test::expect_close(one.weight, f.at("dense.weight"), 1e-12, 1e-13, "dense weight");
    test::expect_close(one.bias, f.at("dense.bias"), 1e-12, 1e-13, "dense bias");
    test::expect_close(conv2d(f.at("x"), one.weight, one.bias, one.options), f.at("out"), 1e-12,
                       1e-12, "dense(x)");
    // Module form, float32.
    nn::SeparableConv2d sep({.in = c.in,
                             .out = c.out,
                             .kernels_per_layer = c.mult,
                             .kernel = c.k,
                             .stride = c.stride,
                             .padding = pad,
                             .dilation = c.dilation,
                             .padding_mode = c.mode});
    sep.load_state_dict(
        pick(f, {"depthwise.weight", "depthwise.bias", "pointwise.weight", "pointwise.bias"}));
    auto dense = nn::to_dense(sep);
    const ag::Variable x(f.at("x").to(DType::F32));
    test::expect_close((*dense)(x).value(), f.at("out"), 1e-5, 1e-5, "module dense(x)");
  }
}

struct SpatialCase {
  const char* name;
  std::int64_t in, out, k, stride, padding, dilation;  // padding -1: 'same'
};

TEST(ConvertFixture, SpatiallySeparableToDenseMatchesTorchEinsum) {
  const std::vector<SpatialCase> cases{{"spatial_k3_p0_bias", 3, 4, 3, 1, 0, 1},
                                       {"spatial_k5_d2_same", 2, 3, 5, 1, -1, 2},
                                       {"spatial_k3_s2_p1", 3, 2, 3, 2, 1, 1}};
  for (const SpatialCase& c : cases) {
    SCOPED_TRACE(c.name);
    const io::SafetensorsFile f = fixture(c.name);
    const bool same = c.padding < 0;
    const nn::ConvParams one =
        nn::compose({.weight = f.at("0.weight"),
                     .bias = f.at("0.bias"),
                     .options = {.stride = {c.stride, 1},
                                 .padding = same ? Padding::same() : Padding{c.padding, 0},
                                 .dilation = {c.dilation, 1}}},
                    {.weight = f.at("1.weight"),
                     .bias = f.at("1.bias"),
                     .options = {.stride = {1, c.stride},
                                 .padding = same ? Padding::same() : Padding{0, c.padding},
                                 .dilation = {1, c.dilation}}});
    test::expect_close(one.weight, f.at("dense.weight"), 1e-12, 1e-13, "dense weight");
    test::expect_close(one.bias, f.at("dense.bias"), 1e-12, 1e-13, "dense bias");
    test::expect_close(conv2d(f.at("x"), one.weight, one.bias, one.options), f.at("out"), 1e-12,
                       1e-12, "dense(x)");
    nn::SpatiallySeparableConv2d sp({.in = c.in,
                                     .out = c.out,
                                     .kernel = c.k,
                                     .stride = c.stride,
                                     .padding = c.padding,
                                     .dilation = c.dilation});
    sp.load_state_dict(pick(f, {"0.weight", "0.bias", "1.weight", "1.bias"}));
    auto dense = nn::to_dense(sp);
    test::expect_close((*dense)(ag::Variable(f.at("x").to(DType::F32))).value(), f.at("out"), 1e-5,
                       1e-5, "module dense(x)");
  }
}

/// Random BatchNorm affine parameters, then a few training-mode forwards so that the running
/// statistics are far from (0, 1).
void warm_batch_norms(nn::Module& model, const Shape& input, std::uint64_t seed) {
  for (auto& [path, m] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm*>(m)) {
      bn->weight.set_value(Tensor::uniform(bn->weight.shape(), 0.5, 1.5, ++seed));
      bn->bias.set_value(Tensor::uniform(bn->bias.shape(), -0.3, 0.3, ++seed));
    }
  model.train();
  ag::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) model(ag::Variable(Tensor::uniform(input, -1, 2, ++seed)));
}

TEST(ConvertFuse, MobileNetV2GivesTheSameLogitsWithoutBatchNorm) {
  nn::manual_seed(3);
  nn::MobileNetV2 model({.width = 0.35, .num_classes = 10});
  warm_batch_norms(model, {4, 3, 48, 48}, 11);
  model.eval();
  ag::NoGradGuard no_grad;
  const ag::Variable x(Tensor::uniform({2, 3, 48, 48}, -1, 1, 5));
  const Tensor before = model(x).value().clone();
  const std::size_t keys_before = model.state_dict().size();
  const nn::FuseReport report = nn::fuse(model);
  EXPECT_EQ(report.count(), 52);  // stem, 2 + 16*3 in the blocks, last 1x1
  EXPECT_TRUE(report.skipped.empty());
  EXPECT_EQ(report.fused.front(), "features.0.0 + features.0.1");
  const Tensor after = model(x).value();
  test::expect_close(after, before, 1e-4, 1e-5, "logits after fuse");
  const nn::StateDict sd = model.state_dict();
  EXPECT_EQ(sd.size(), keys_before - 52 * 5 + 52);  // 5 BatchNorm entries out, 1 bias in
  for (const auto& [key, t] : sd) EXPECT_EQ(key.find("running"), std::string::npos) << key;
  auto has = [&](const std::string& k) {
    for (const auto& [key, t] : sd)
      if (key == k) return true;
    return false;
  };
  EXPECT_TRUE(has("features.1.conv.0.0.bias"));
  EXPECT_TRUE(has("features.2.conv.2.bias"));
  EXPECT_FALSE(has("features.2.conv.3.weight"));
  EXPECT_EQ(nn::fuse(model).count(), 0);  // nothing left to fuse
}

TEST(ConvertFuse, SkipsWhatCannotFoldAndRefusesTrainingMode) {
  nn::Sequential net;
  auto inner = std::make_shared<nn::Sequential>();
  inner->push_back(std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 3, .out = 4, .kernel = 3}));
  inner->push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 4}));
  inner->push_back(std::make_shared<nn::ReLU>());
  net.push_back(inner);
  net.push_back(
      std::make_shared<nn::ConvTranspose2d>(nn::ConvOpts{.in = 4, .out = 4, .kernel = 2}));
  net.push_back(std::make_shared<nn::BatchNorm2d>(nn::BatchNormOpts{.features = 4}));
  net.push_back(std::make_shared<nn::Conv2d>(nn::ConvOpts{.in = 4, .out = 4, .kernel = 1}));
  net.push_back(std::make_shared<nn::BatchNorm2d>(
      nn::BatchNormOpts{.features = 4, .track_running_stats = false}));
  test::expect_error<InvalidArgument>([&] { nn::fuse(net); },
                                      {"fuse", "the model (Sequential) is in training mode"});
  warm_batch_norms(net, {2, 3, 8, 8}, 21);
  net.eval();
  inner->at(1)->train();
  test::expect_error<InvalidArgument>([&] { nn::fuse(net); }, {"'0.1' (BatchNorm2d)"});
  net.eval();
  const ag::Variable x(Tensor::uniform({2, 3, 8, 8}, -1, 1, 2));
  const Tensor before = net(x).value().clone();
  const nn::FuseReport r = nn::fuse(net);
  ASSERT_EQ(r.fused, std::vector<std::string>{"0.0 + 0.1"});
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_NE(r.skipped[0].find("1 + 2: the convolution is a ConvTranspose2d"), std::string::npos);
  EXPECT_NE(r.skipped[1].find("track_running_stats=false"), std::string::npos);
  EXPECT_EQ((*inner)[1].type_name(), "Identity");
  test::expect_close(net(x).value(), before, 1e-5, 1e-6, "after fuse");
}

TEST(ConvertFuse, FoldBatchNormRefusesBadPairs) {
  nn::Conv2d conv({.in = 3, .out = 6, .kernel = 3});
  nn::BatchNorm2d bn4({.features = 4});
  nn::BatchNorm2d bn6({.features = 6});
  nn::BatchNorm1d bn1d({.features = 6});
  nn::ConvTranspose2d up({.in = 3, .out = 6, .kernel = 2});
  for (nn::Module* m : std::vector<nn::Module*>{&conv, &bn4, &bn1d, &up}) m->eval();
  test::expect_error<InvalidArgument>(
      [&] { nn::fold_batch_norm(conv, bn4); },
      {"fold_batch_norm", "6 output channels", "BatchNorm2d has 4 features"});
  test::expect_error<InvalidArgument>([&] { nn::fold_batch_norm(up, bn6); },
                                      {"ConvTranspose2d", "only direct convolutions fold"});
  test::expect_error<InvalidArgument>([&] { nn::fold_batch_norm(conv, bn1d); },
                                      {"a Conv2d is followed by a BatchNorm1d"});
  test::expect_error<InvalidArgument>([&] { nn::fold_batch_norm(conv, bn6); },
                                      {"BatchNorm2d is in training mode", "eval()"});
  const nn::ConvParams p{.weight = Tensor::ones({2, 1, 1, 1})};
  test::expect_error<InvalidArgument>(
      [&] {
        nn::fold_batch_norm(p, {.running_mean = Tensor::zeros({2}),
                                .running_var = Tensor::from_values({2}, {1, -2}),
                                .eps = 1e-5});
      },
      {"running_var[1] + eps = -2 + 1e-05 is not positive"});
  test::expect_error<InvalidArgument>(
      [&] {
        nn::fold_batch_norm(p,
                            {.running_mean = Tensor::zeros({3}), .running_var = Tensor::ones({3})});
      },
      {"2 output channels", "running_mean has shape [3]"});
}

}  // namespace
}  // namespace convkit
