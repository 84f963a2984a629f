// Conversions between convolution forms: each converted convolution, run, equals the original
// (double precision for the tensor forms), and the unrepresentable cases are refused by name.
#include "convkit/nn/convert.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "convkit/ops/conv.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

using nn::ConvParams;

Tensor run(const ConvParams& p, const Tensor& x) {
  if (x.dim() == 3) return conv1d(x, p.weight, p.bias, p.options);
  if (x.dim() == 4) return conv2d(x, p.weight, p.bias, p.options);
  return conv3d(x, p.weight, p.bias, p.options);
}

/// A random F64 convolution: weight (out, in/groups, k...), bias unless `bias` is false.
ConvParams random_conv(std::int64_t in, std::int64_t out, std::vector<std::int64_t> k,
                       ConvOptions o, bool bias, std::uint64_t seed) {
  std::vector<std::int64_t> shape{out, in / o.groups};
  shape.insert(shape.end(), k.begin(), k.end());
  return ConvParams{.weight = Tensor::uniform(Shape(shape), -1, 1, seed, DType::F64),
                    .bias = bias ? Tensor::uniform({out}, -1, 1, seed + 1, DType::F64) : Tensor{},
                    .options = std::move(o)};
}

void expect_same(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const CloseResult r = allclose(got.to(DType::F64), want.to(DType::F64), tol, tol);
  EXPECT_TRUE(r.ok) << what << ": " << r.message;
}

TEST(ConvertGroups, DenseWeightIsBlockDiagonalWithDepthwiseMultiplier) {
  // Depthwise, 3 channels, multiplier 2: output o reads input o / 2.
  const Tensor w = Tensor::uniform({6, 1, 2, 2}, 1, 2, 3, DType::F64);
  const Tensor d = nn::grouped_to_dense_weight(w, 3);
  ASSERT_EQ(d.shape(), (Shape{6, 3, 2, 2}));
  for (std::int64_t o = 0; o < 6; ++o)
    for (std::int64_t c = 0; c < 3; ++c)
      EXPECT_EQ(d.get({o, c, 1, 0}), c == o / 2 ? w.get({o, 0, 1, 0}) : 0.0) << o << " " << c;
}

TEST(ConvertGroups, EveryGroupCountRoundTripsAndRunsTheSame) {
  struct Case {
    std::int64_t in, out;
    std::vector<std::int64_t> k, x;
    ConvOptions o;
  };
  std::vector<Case> cases;
  for (std::int64_t g : {1, 2, 3, 6})  // groups 1..C for C = 6 (those that divide)
    cases.push_back({6, 12, {3, 3}, {2, 6, 9, 8}, {.stride = {2}, .padding = 1, .groups = g}});
  cases.push_back({4,
                   8,
                   {3, 3},
                   {1, 4, 10, 7},  // depthwise, multiplier 2, dilation 2, asym.
                   {.padding = Padding::asymmetric({2, 1}, {0, 2}), .dilation = {2}, .groups = 4}});
  cases.push_back({4, 4, {5}, {2, 4, 13}, {.padding = Padding::same(), .groups = 2}});
  cases.push_back({6, 3, {3, 1, 2}, {1, 6, 4, 5, 6}, {.stride = {1, 2, 1}, .groups = 3}});
  std::uint64_t seed = 100;
  for (const Case& c : cases) {
    const ConvParams grouped = random_conv(c.in, c.out, c.k, c.o, true, ++seed);
    ConvParams dense = grouped;
    dense.weight = nn::grouped_to_dense_weight(grouped.weight, c.o.groups);
    dense.options.groups = 1;
    ASSERT_EQ(dense.weight.size(1), c.in);
    const Tensor x = Tensor::uniform(Shape(c.x), -1, 1, ++seed, DType::F64);
    const std::string what = "groups " + std::to_string(c.o.groups) + " " + x.shape().str();
    expect_same(run(dense, x), run(grouped, x), 1e-12, what);
    const Tensor back = nn::dense_to_grouped_weight(dense.weight, c.o.groups);
    EXPECT_TRUE(allclose(back, grouped.weight, 0, 0)) << what;  // exact
  }
}

TEST(ConvertGroups, ModulesGoToDenseAndBack) {
  nn::Conv2d conv(
      {.in = 6, .out = 9, .kernel = 3, .stride = 2, .padding = Padding::same(), .groups = 3});
  const ag::Variable x(Tensor::uniform({2, 6, 11, 10}, -1, 1, 5));
  auto dense = nn::to_dense(conv);
  EXPECT_EQ(dense->options().groups, 1);
  EXPECT_EQ(dense->weight.shape(), (Shape{9, 6, 3, 3}));
  expect_same((*dense)(x).value(), conv(x).value(), 1e-5, "to_dense");
  auto regrouped = nn::to_grouped(*dense, 3);
  EXPECT_TRUE(allclose(regrouped->weight.value(), conv.weight.value(), 0, 0));
  EXPECT_TRUE(allclose(regrouped->bias.value(), conv.bias.value(), 0, 0));
  // Depthwise with multiplier 2 -> dense -> depthwise again.
  nn::DepthwiseConv2d dw({.channels = 4, .multiplier = 2, .padding = 2, .dilation = 2});
  auto dw_dense = nn::to_dense(dw);
  const ag::Variable x4(Tensor::uniform({1, 4, 9, 9}, -1, 1, 6));
  expect_same((*dw_dense)(x4).value(), dw(x4).value(), 1e-5, "depthwise to_dense");
  EXPECT_TRUE(allclose(nn::to_grouped(*dw_dense, 4)->weight.value(), dw.weight.value(), 0, 0));
  // A transposed convolution's weight is (in, out/groups, k...): rows are input channels.
  nn::ConvTranspose2d up({.in = 4,
                          .out = 6,
                          .kernel = 3,
                          .stride = 2,
                          .padding = 1,
                          .groups = 2,
                          .output_padding = 1});
  auto up_dense = nn::to_dense(up);
  EXPECT_EQ(up_dense->weight.shape(), (Shape{4, 6, 3, 3}));
  expect_same((*up_dense)(x4).value(), up(x4).value(), 1e-5, "transposed to_dense");
}

TEST(ConvertGroups, RefusesWhatIsNotRepresentable) {
  Tensor dense = nn::grouped_to_dense_weight(Tensor::ones({4, 2, 3, 3}, DType::F64), 2);
  dense.set({1, 3, 2, 0}, 0.25);  // output 1 (group 0) reading input 3 (group 1)
  test::expect_error<InvalidArgument>([&] { nn::dense_to_grouped_weight(dense, 2); },
                                      {"dense_to_grouped_weight", "groups 2", "weight[out 1, in 3]",
                                       "(2, 0)", "0.25", "group 0", "0..1"});
  test::expect_error<InvalidArgument>([&] { nn::dense_to_grouped_weight(dense, 3); },
                                      {"groups 3", "out 4", "in 4"});
  test::expect_error<InvalidArgument>(
      [] {
        nn::grouped_to_dense_weight(Tensor::ones({5, 1, 3, 3}), 2);
      },
      {"groups 2", "first dimension 5"});
  test::expect_error<InvalidArgument>(
      [] {
        nn::grouped_to_dense_weight(Tensor::ones({4, 1}), 1);
      },
      {"weight", "[4, 1]"});
  nn::Conv2d conv({.in = 6, .out = 4, .kernel = 1});
  test::expect_error<InvalidArgument>([&] { nn::to_grouped(conv, 4); },
                                      {"to_grouped", "groups 4", "in 6", "out 4"});
}

/// A first/second pair and the inputs to run them on.
struct ComposeCase {
  const char* name;
  ConvParams first, second;
  std::vector<Shape> inputs;
};

std::vector<ComposeCase> compose_cases() {
  std::vector<ComposeCase> c;
  std::uint64_t s = 1000;
  auto conv = [&](std::int64_t in, std::int64_t out, std::vector<std::int64_t> k, ConvOptions o,
                  bool bias = true) { return random_conv(in, out, std::move(k), o, bias, s += 7); };
  const ConvParams pw = conv(6, 5, {1, 1}, {});
  c.push_back({"depthwise m2 s2 + pointwise",
               conv(3, 6, {3, 3}, {.stride = {2}, .padding = 1, .groups = 3}),
               pw,
               {{2, 3, 9, 8}}});
  c.push_back({"depthwise m2 d2 same + pointwise",
               conv(3, 6, {3, 3}, {.padding = Padding::same(), .dilation = {2}, .groups = 3}),
               pw,
               {{1, 3, 9, 8}}});
  c.push_back({"depthwise k5 s2 same (TF) + pointwise",
               conv(3, 6, {5, 5}, {.stride = {2}, .padding = Padding::same(), .groups = 3}),
               pw,
               {{1, 3, 9, 8}, {1, 3, 10, 11}, {1, 3, 12, 7}}});
  c.push_back(
      {"depthwise reflect + pointwise",
       conv(3, 6, {3, 3},
            {.padding = 2, .dilation = {2}, .groups = 3, .padding_mode = PaddingMode::Reflect}),
       pw,
       {{1, 3, 8, 9}}});
  c.push_back({"asymmetric + strided pointwise",
               conv(3, 6, {3, 2}, {.padding = Padding::asymmetric({0, 1}, {2, 1})}),
               conv(6, 4, {1, 1}, {.stride = {2}}),
               {{1, 3, 7, 9}}});
  c.push_back({"k3 s2 + k3 d2 (dilation gcd 1)",
               conv(2, 4, {3, 3}, {.stride = {2}, .padding = 1}),
               conv(4, 3, {3, 3}, {.dilation = {2}}),
               {{1, 2, 17, 15}}});
  c.push_back({"k3 d2 + k2 s2 d2 (dilation 2)",
               conv(2, 4, {3, 3}, {.dilation = {2}}),
               conv(4, 3, {2, 2}, {.stride = {2}, .dilation = {2}}),
               {{1, 2, 12, 11}}});
  c.push_back({"grouped g2 + grouped g2",
               conv(4, 6, {3, 3}, {.padding = 1, .groups = 2}),
               conv(6, 4, {1, 3}, {.groups = 2}),
               {{2, 4, 6, 7}}});
  c.push_back({"vertical + horizontal, padding 0, biases",
               conv(3, 4, {3, 1}, {}),
               conv(4, 4, {1, 3}, {}),
               {{1, 3, 8, 8}}});
  c.push_back({"vertical (no bias) + horizontal, explicit padding, stride 2",
               conv(3, 4, {3, 1}, {.stride = {2, 1}, .padding = {1, 0}}, false),
               conv(4, 4, {1, 3}, {.stride = {1, 2}, .padding = {0, 1}}),
               {{1, 3, 9, 8}}});
  c.push_back({"vertical (no bias) + horizontal, 'same' stride 2",
               conv(3, 4, {3, 1}, {.stride = {2, 1}, .padding = Padding::same()}, false),
               conv(4, 4, {1, 3}, {.stride = {1, 2}, .padding = Padding::same()}),
               {{1, 3, 9, 8}, {1, 3, 10, 7}}});
  c.push_back({"vertical + horizontal, replicate on both (bias allowed)",
               conv(3, 2, {3, 1}, {.padding = {1, 0}, .padding_mode = PaddingMode::Replicate}),
               conv(2, 2, {1, 3}, {.padding = {0, 1}, .padding_mode = PaddingMode::Replicate}),
               {{1, 3, 6, 7}}});
  c.push_back({"1-D k3 s2 + k3",
               conv(2, 3, {3}, {.stride = {2}, .padding = 1}),
               conv(3, 2, {3}, {}),
               {{2, 2, 19}}});
  c.push_back({"3-D depthwise + pointwise",
               conv(2, 4, {3, 3, 3}, {.stride = {1, 2, 2}, .padding = 1, .groups = 2}),
               conv(4, 3, {1, 1, 1}, {}),
               {{1, 2, 5, 6, 7}}});
  return c;
}

TEST(ConvertCompose, ComposedConvolutionEqualsTheTwoInDouble) {
  for (const ComposeCase& c : compose_cases()) {
    const ConvParams one = nn::compose(c.first, c.second);
    EXPECT_EQ(one.options.groups, 1) << c.name;
    EXPECT_EQ(one.weight.dtype(), DType::F64) << c.name;
    for (const Shape& shape : c.inputs) {
      const Tensor x = Tensor::uniform(shape, -1, 1, 77, DType::F64);
      expect_same(run(one, x), run(c.second, run(c.first, x)), 1e-12,
                  std::string(c.name) + " " + shape.str());
    }
  }
}

TEST(ConvertCompose, SeparableModulesBecomeOneDenseConv) {
  std::uint64_t seed = 40;
  const std::vector<nn::SeparableOpts> opts{
      {.in = 3, .out = 5, .kernels_per_layer = 2, .stride = 2},
      {.in = 4, .out = 2, .kernel = 5, .padding = 4, .dilation = 2},
      {.in = 2, .out = 3, .kernels_per_layer = 3, .stride = 2, .padding = Padding::same()},
      {.in = 3, .out = 3, .padding = Padding::asymmetric({1, 0}, {0, 2}), .bias = false},
      {.in = 2, .out = 4, .padding = 1, .padding_mode = PaddingMode::Circular}};
  for (const auto& o : opts) {
    nn::SeparableConv2d sep(o);
    auto dense = nn::to_dense(sep);
    ASSERT_NE(dense, nullptr);
    const std::int64_t k = o.kernel.v[0];
    EXPECT_EQ(dense->weight.shape(), (Shape{o.out, o.in, k, k}));
    EXPECT_EQ(dense->options().padding_mode, o.padding_mode);
    for (const Shape& s : {Shape{2, o.in, 9, 8}, Shape{1, o.in, 10, 11}}) {
      const ag::Variable x(Tensor::uniform(s, -1, 1, ++seed));
      expect_same((*dense)(x).value(), sep(x).value(), 2e-5, "separable " + s.str());
    }
  }
}

TEST(ConvertCompose, SpatiallySeparableExactWhereRepresentable) {
  const ag::Variable x(Tensor::uniform({2, 3, 9, 8}, -1, 1, 9));
  // Padding 0: exact with both biases.
  nn::SpatiallySeparableConv2d valid({.in = 3, .out = 4, .kernel = 3, .padding = 0});
  expect_same((*nn::to_dense(valid))(x).value(), valid(x).value(), 2e-5, "padding 0");
  // Width padding ('same' at stride 1 and 2, explicit): exact once the vertical bias is zero.
  for (const nn::SpatiallySeparableOpts& o :
       {nn::SpatiallySeparableOpts{.in = 3, .out = 2, .kernel = 5, .dilation = 2},
        nn::SpatiallySeparableOpts{.in = 3, .out = 4, .kernel = 3, .stride = 2},
        nn::SpatiallySeparableOpts{.in = 3, .out = 4, .kernel = 3, .stride = 2, .padding = 1}}) {
    nn::SpatiallySeparableConv2d sp(o);
    test::expect_error<InvalidArgument>([&] { nn::to_dense(sp); },
                                        {"to_dense(SpatiallySeparableConv2d)",
                                         "horizontal convolution zero-pads spatial dimension 1",
                                         "vertical convolution's bias is not zero", "bias[0]"});
    sp.vertical->bias.set_value(Tensor::zeros({o.out}));
    auto dense = nn::to_dense(sp);
    EXPECT_EQ(dense->weight.shape(), (Shape{o.out, 3, o.kernel, o.kernel}));
    expect_same((*dense)(x).value(), sp(x).value(), 2e-5, "spatially separable");
  }
}

TEST(ConvertCompose, VerticalBiasReallyBreaksWidthPadding) {
  // The case compose refuses: a vertical bias with width padding. The closest single
  // convolution (the bias carried through the horizontal taps) is right in the interior and
  // wrong exactly at the columns the horizontal convolution pads.
  const ConvParams v = random_conv(2, 3, {3, 1}, {.padding = {1, 0}}, true, 5);
  const ConvParams h = random_conv(3, 3, {1, 3}, {.padding = {0, 1}}, true, 6);
  test::expect_error<InvalidArgument>([&] { nn::compose(v, h); }, {"bias is not zero"});
  ConvParams v0 = v;
  v0.bias = Tensor::zeros({3}, DType::F64);
  ConvParams one = nn::compose(v0, h);
  for (std::int64_t o = 0; o < 3; ++o) {
    double b = one.bias.get({o});
    for (std::int64_t m = 0; m < 3; ++m)
      for (std::int64_t x = 0; x < 3; ++x) b += h.weight.get({o, m, 0, x}) * v.bias.get({m});
    one.bias.set({o}, b);
  }
  const Tensor x = Tensor::uniform({1, 2, 6, 7}, -1, 1, 8, DType::F64);
  const Tensor two = run(h, run(v, x)), single = run(one, x);
  double interior = 0, border = 0;
  for (std::int64_t o = 0; o < 3; ++o)
    for (std::int64_t y = 0; y < 6; ++y)
      for (std::int64_t c = 0; c < 7; ++c) {
        const double d = std::abs(two.get({0, o, y, c}) - single.get({0, o, y, c}));
        double& worst = c == 0 || c == 6 ? border : interior;  // columns 0 and 6 read padding
        worst = std::max(worst, d);
      }
  EXPECT_LT(interior, 1e-12);
  EXPECT_GT(border, 1e-3);
}

TEST(ConvertCompose, RefusesCompositionsOneConvolutionCannotDo) {
  auto conv = [](std::int64_t in, std::int64_t out, std::vector<std::int64_t> k, ConvOptions o,
                 bool bias = false) { return random_conv(in, out, std::move(k), o, bias, 3); };
  test::expect_error<InvalidArgument>(
      [&] {
        nn::compose(conv(2, 3, {3, 1}, {.padding = {1, 0}, .padding_mode = PaddingMode::Reflect}),
                    conv(3, 3, {1, 3}, {.padding = {0, 1}}));
      },
      {"padding modes do not compose", "first convolution pads with reflect", "second with zeros"});
  test::expect_error<InvalidArgument>(
      [&] {
        nn::compose(conv(2, 3, {3, 3}, {.padding = 1}), conv(3, 3, {3, 3}, {.padding = 1}));
      },
      {"second convolution pads spatial dimension 0 by (1, 1)",
       "first convolution is not the "
       "identity (kernel 3, stride 1, padding (1, 1))"});
  test::expect_error<InvalidArgument>(
      [&] {
        nn::compose(conv(2, 4, {3, 3}, {}), conv(5, 3, {1, 1}, {}));
      },
      {"second convolution reads 5 channels but the first convolution makes 4"});
  test::expect_error<InvalidArgument>(
      [&] {
        nn::compose(conv(2, 4, {3, 3}, {.stride = {2}, .padding = Padding::same()}),
                    conv(4, 3, {3, 3}, {}));
      },
      {"'same' padding at stride 2", "depends on the input size", "kernel 3, stride 1"});
  test::expect_error<InvalidArgument>(
      [&] {
        nn::compose(conv(2, 4, {3, 1}, {.stride = {2, 1}, .padding = Padding::same()}),
                    conv(4, 3, {1, 3}, {}));
      },
      {"fixed padding (0, 0) along spatial dimension 1", "one padding cannot express both"});
  test::expect_error<InvalidArgument>(
      [&] {
        nn::compose(conv(2, 4, {3, 3}, {}), conv(4, 3, {3}, {}));
      },
      {"different spatial dimensions"});
  test::expect_error<InvalidArgument>(
      [&] {
        nn::compose(conv(2, 4, {3, 3}, {}), conv(4, 3, {1, 1}, {.groups = 2}));
      },
      {"compose: second convolution's groups 2 must be > 0 and divide its 3 output channels"});
  test::expect_error<InvalidArgument>(
      [&] {
        nn::compose(conv(2, 4, {3, 3}, {.stride = {1, 1, 1}}), conv(4, 3, {1, 1}, {}));
      },
      {"first convolution's stride needs 1 or 2 values, got 3"});
  nn::ConvTranspose2d up({.in = 2, .out = 2, .kernel = 2, .stride = 2});
  nn::Conv2d pw({.in = 2, .out = 2});
  test::expect_error<InvalidArgument>([&] { nn::compose(up, pw); },
                                      {"only direct convolutions compose", "ConvTranspose2d"});
}

}  // namespace
}  // namespace convkit
