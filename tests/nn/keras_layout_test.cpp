// Keras <-> PyTorch kernel layouts (round trips, equivalent outputs), Keras weight lists in
// the PyTorch-named modules, gradchecks of the Keras functional forms, validation messages.
#include <gtest/gtest.h>

#include "convkit/autograd/functional.hpp"
#include "convkit/autograd/gradcheck.hpp"
#include "convkit/nn/nn.hpp"
#include "nn/nn_fixture_util.hpp"
#include "test_util.hpp"

namespace convkit::nn::keras {
namespace {

using I = std::int64_t;

ag::Variable nchw_of(const ag::Variable& nhwc) { return ag::permute(nhwc, {0, 3, 1, 2}); }
ag::Variable nhwc_of(const ag::Variable& nchw) { return ag::permute(nchw, {0, 2, 3, 1}); }

TEST(KerasLayout, ConvKernelIndexMapAndRoundTrip) {
  const Tensor k = Tensor::uniform({3, 2, 4, 5}, -1, 1, 1);  // (kh, kw, in/g, out)
  const Tensor w = conv_kernel_to_torch(k);
  ASSERT_EQ(w.shape(), (Shape{5, 4, 3, 2}));
  for (I o = 0; o < 5; ++o)
    for (I i = 0; i < 4; ++i)
      for (I y = 0; y < 3; ++y)
        for (I x = 0; x < 2; ++x) ASSERT_EQ(w.get({o, i, y, x}), k.get({y, x, i, o}));
  EXPECT_TRUE(allclose(conv_kernel_from_torch(w), k, 0, 0));
}

TEST(KerasLayout, DepthwiseKernelIndexMapAndRoundTrip) {
  const Tensor k = Tensor::uniform({3, 4, 5, 3}, -1, 1, 2, DType::F64);  // (kh, kw, in, m)
  const Tensor w = depthwise_kernel_to_torch(k);
  ASSERT_EQ(w.shape(), (Shape{15, 1, 3, 4}));
  for (I c = 0; c < 5; ++c)
    for (I m = 0; m < 3; ++m)
      for (I y = 0; y < 3; ++y)
        for (I x = 0; x < 4; ++x) ASSERT_EQ(w.get({c * 3 + m, 0, y, x}), k.get({y, x, c, m}));
  EXPECT_TRUE(allclose(depthwise_kernel_from_torch(w, 3), k, 0, 0));
  EXPECT_EQ(depthwise_kernel_from_torch(w, 5).shape(), (Shape{3, 4, 3, 5}));
}

TEST(KerasLayout, PointwiseKernelRoundTrip) {
  const Tensor k = Tensor::uniform({1, 1, 6, 4}, -1, 1, 3);
  const Tensor w = pointwise_kernel_to_torch(k);
  ASSERT_EQ(w.shape(), (Shape{4, 6, 1, 1}));
  EXPECT_EQ(w.get({3, 5, 0, 0}), k.get({0, 0, 5, 3}));
  EXPECT_TRUE(allclose(pointwise_kernel_from_torch(w), k, 0, 0));
}

TEST(KerasLayout, BadShapesAreRefused) {
  using test::expect_error;
  expect_error<InvalidArgument>(
      [] {
        conv_kernel_to_torch(Tensor::zeros({3, 3, 4}));
      },
      {"conv_kernel_to_torch", "rank 4", "(3, 3, 4)"});
  expect_error<InvalidArgument>(
      [] {
        depthwise_kernel_from_torch(Tensor::zeros({6, 2, 3, 3}), 2);
      },
      {"(in*multiplier, 1, kh, kw)", "(6, 2, 3, 3)"});
  expect_error<InvalidArgument>(
      [] {
        depthwise_kernel_from_torch(Tensor::zeros({6, 1, 3, 3}), 4);
      },
      {"depth_multiplier 4", "divide the 6 output channels"});
  expect_error<InvalidArgument>(
      [] {
        pointwise_kernel_to_torch(Tensor::zeros({3, 3, 4, 2}));
      },
      {"(1, 1, in, out)", "(3, 3, 4, 2)"});
  expect_error<InvalidArgument>(
      [] {
        pointwise_kernel_from_torch(Tensor::zeros({2, 4, 3, 3}));
      },
      {"(out, in, 1, 1)", "(2, 4, 3, 3)"});
  nn::DepthwiseConv2d dw({.channels = 4, .multiplier = 2});
  expect_error<InvalidArgument>(
      [&] {
        load_keras_depthwise(dw, {Tensor::zeros({3, 3, 4, 1}), Tensor::zeros({8})});
      },
      {"load_keras_depthwise", "(3, 3, 4, 1)", "(8, 1, 3, 3)"});
  expect_error<InvalidArgument>(
      [&] {
        load_keras_depthwise(dw, {Tensor::zeros({3, 3, 4, 2}), Tensor::zeros({4})});
      },
      {"bias must have shape (8)", "got (4)"});
  nn::Conv2d dense({.in = 4, .out = 8, .kernel = 3});
  expect_error<InvalidArgument>(
      [&] {
        load_keras_depthwise(dense, {Tensor::zeros({3, 3, 4, 2})});
      },
      {"not depthwise", "groups 1"});
  nn::SeparableConv2d sep({.in = 4, .out = 6, .bias = false});
  expect_error<InvalidArgument>(
      [&] {
        load_keras_separable(
            sep, {Tensor::zeros({3, 3, 4, 1}), Tensor::zeros({1, 1, 4, 6}), Tensor::zeros({6})});
      },
      {"load_keras_separable", "bias (6)", "none"});
  expect_error<InvalidArgument>(
      [&] {
        load_keras_separable(sep, {Tensor::zeros({3, 3, 4, 1})});
      },
      {"[depthwise_kernel, pointwise_kernel, (bias)]", "got 1"});
}

// keras::DepthwiseConv2D on NHWC equals nn::DepthwiseConv2d on NCHW after loading its
// get_weights(), and the list read back from the module equals the original.
TEST(KerasLayout, DepthwiseWeightsGiveTheSameLayer) {
  manual_seed(3);
  DepthwiseConv2D k(
      {.in_channels = 3, .kernel_size = 3, .strides = 2, .padding = "same", .depth_multiplier = 2});
  std::vector<Tensor> kw = k.get_weights();
  kw[1] = Tensor::uniform({6}, -1, 1, 9);  // a non-zero bias
  k.set_weights(kw);
  nn::DepthwiseConv2d t({.channels = 3, .multiplier = 2, .stride = 2, .padding = Padding::same()});
  load_keras_depthwise(t, kw);
  const ag::Variable x(Tensor::uniform({2, 8, 7, 3}, -1, 1, 4));
  test::expect_close(k(x).value(), nhwc_of(t(nchw_of(x))).value(), 1e-6, 1e-6, "output");
  const std::vector<Tensor> back = keras_depthwise_weights(t);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_TRUE(allclose(back[0], kw[0], 0, 0));
  EXPECT_TRUE(allclose(back[1], kw[1], 0, 0));
  load_keras_depthwise(t, {kw[0]});  // without a bias: the module's bias becomes zero
  EXPECT_EQ(t.bias.value().to_vector(), std::vector<double>(6, 0.0));
}

// nn::SeparableConv2d with both biases -> Keras list (the depthwise bias folded into the
// single Keras bias) -> keras::SeparableConv2D: the same function; and back.
TEST(KerasLayout, SeparableWeightsFoldTheDepthwiseBias) {
  manual_seed(4);
  nn::SeparableConv2d t({.in = 3, .out = 5, .kernels_per_layer = 2, .padding = 1});
  t.depthwise->bias.set_value(Tensor::uniform({6}, -1, 1, 5));
  const std::vector<Tensor> kw = keras_separable_weights(t);
  ASSERT_EQ(kw.size(), 3u);
  EXPECT_EQ(kw[0].shape(), (Shape{3, 3, 3, 2}));
  EXPECT_EQ(kw[1].shape(), (Shape{1, 1, 6, 5}));
  SeparableConv2D k(
      {.in_channels = 3, .filters = 5, .kernel_size = 3, .padding = "same", .depth_multiplier = 2});
  k.set_weights(kw);
  const ag::Variable x(Tensor::uniform({2, 6, 5, 3}, -1, 1, 6));
  const Tensor want = nhwc_of(t(nchw_of(x))).value();
  test::expect_close(k(x).value(), want, 1e-5, 1e-5, "keras from torch");
  nn::SeparableConv2d t2({.in = 3, .out = 5, .kernels_per_layer = 2, .padding = 1});
  load_keras_separable(t2, k.get_weights());
  EXPECT_EQ(t2.depthwise->bias.value().to_vector(), std::vector<double>(6, 0.0));
  test::expect_close(nhwc_of(t2(nchw_of(x))).value(), want, 1e-5, 1e-5, "torch from keras");
}

TEST(KerasLayout, GroupedConvWeightsGiveTheSameLayer) {
  manual_seed(5);
  Conv2D k({.in_channels = 4,
            .filters = 6,
            .kernel_size = {3, 2},
            .padding = "valid",
            .dilation_rate = 2,
            .groups = 2});
  nn::Conv2d t({.in = 4, .out = 6, .kernel = {3, 2}, .dilation = 2, .groups = 2});
  std::vector<Tensor> kw = k.get_weights();
  kw[1] = Tensor::uniform({6}, -1, 1, 8);
  k.set_weights(kw);
  load_keras_conv2d(t, kw);
  const ag::Variable x(Tensor::uniform({2, 9, 8, 4}, -1, 1, 7));
  test::expect_close(k(x).value(), nhwc_of(t(nchw_of(x))).value(), 1e-5, 1e-5, "output");
  const std::vector<Tensor> back = keras_conv2d_weights(t);
  EXPECT_TRUE(allclose(back[0], kw[0], 0, 0));
}

// Finite differences in float64 through every input of the Keras functional forms.
TEST(KerasLayout, GradcheckFunctionalForms) {
  using V = std::vector<ag::Variable>;
  auto var = [](const Shape& s, std::uint64_t seed) {
    return ag::Variable(Tensor::uniform(s, -1, 1, seed, DType::F64), true);
  };
  const DepthwiseConv2DOpts dw{
      .kernel_size = 3, .strides = 2, .padding = "same", .depth_multiplier = 2};
  auto r = ag::gradcheck([&](const V& v) { return depthwise_conv2d(v[0], v[1], v[2], dw); },
                         {var({2, 6, 5, 3}, 1), var({3, 3, 3, 2}, 2), var({6}, 3)});
  EXPECT_TRUE(r) << r.message;
  DepthwiseConv2DOpts dwf = dw;
  dwf.data_format = "channels_first";
  dwf.dilation_rate = 2;
  r = ag::gradcheck([&](const V& v) { return depthwise_conv2d(v[0], v[1], v[2], dwf); },
                    {var({1, 3, 7, 6}, 4), var({3, 3, 3, 2}, 5), var({6}, 6)});
  EXPECT_TRUE(r) << r.message;
  const SeparableConv2DOpts sep{
      .filters = 4, .kernel_size = {3, 2}, .strides = 2, .padding = "same", .depth_multiplier = 2};
  r = ag::gradcheck(
      [&](const V& v) { return separable_conv2d(v[0], v[1], v[2], v[3], sep); },
      {var({2, 6, 5, 2}, 7), var({3, 2, 2, 2}, 8), var({1, 1, 4, 4}, 9), var({4}, 10)});
  EXPECT_TRUE(r) << r.message;
  const Conv2DOpts conv{.filters = 4, .kernel_size = 3, .padding = "same", .groups = 2};
  r = ag::gradcheck([&](const V& v) { return conv2d(v[0], v[1], v[2], conv); },
                    {var({2, 5, 4, 4}, 11), var({3, 3, 2, 4}, 12), var({4}, 13)});
  EXPECT_TRUE(r) << r.message;
}

TEST(KerasLayout, ValidationMessagesFollowKeras) {
  using test::expect_error;
  expect_error<InvalidArgument>(
      [] { DepthwiseConv2D({.kernel_size = 3, .depth_multiplier = 0}); },
      {"DepthwiseConv2D", "`depth_multiplier`", "strictly positive", "depth_multiplier=0"});
  expect_error<InvalidArgument>(
      [] { SeparableConv2D({.filters = 4, .kernel_size = 3, .depth_multiplier = -1}); },
      {"SeparableConv2D", "depth_multiplier=-1"});
  expect_error<InvalidArgument>([] { SeparableConv2D({.filters = 0, .kernel_size = 3}); },
                                {"`filters`", "strictly positive", "filters=0"});
  expect_error<InvalidArgument>([] { Conv2D({.filters = -2, .kernel_size = 3}); },
                                {"Conv2D", "filters=-2"});
  expect_error<InvalidArgument>([] { DepthwiseConv2D(DepthwiseConv2DOpts{}); },
                                {"`kernel_size` argument must be a tuple of 2 integers",
                                 "kernel_size=0", "values {0}", "`value > 0`"});
  expect_error<InvalidArgument>(
      [] {
        Conv2D({.filters = 2, .kernel_size = {3, -1}});
      },
      {"kernel_size=(3, -1)", "values {-1}"});
  expect_error<InvalidArgument>(
      [] {
        Conv2D({.filters = 2, .kernel_size = {3, 3, 3}});
      },
      {"tuple of 2 integers", "kernel_size=(3, 3, 3)"});
  expect_error<InvalidArgument>(
      [] {
        DepthwiseConv2D({.kernel_size = 3, .strides = {2, 0}});
      },
      {"`strides` argument", "strides=(2, 0)"});
  expect_error<InvalidArgument>(
      [] { Conv2D({.filters = 4, .kernel_size = 3, .strides = 2, .dilation_rate = 2}); },
      {"`strides > 1` not supported in conjunction with `dilation_rate > 1`",
       "strides=(2, 2) and dilation_rate=(2, 2)"});
  expect_error<InvalidArgument>([] { DepthwiseConv2D({.kernel_size = 3, .padding = "full"}); },
                                {"`padding` argument", "{'valid', 'same'}", "Received: full"});
  expect_error<InvalidArgument>(
      [] { SeparableConv2D({.filters = 2, .kernel_size = 3, .data_format = "nhwc"}); },
      {"`data_format` argument", "Received: data_format=nhwc"});
  expect_error<InvalidArgument>([] { Conv2D({.filters = 5, .kernel_size = 3, .groups = 2}); },
                                {"filters must be evenly divisible", "groups=2, filters=5"});
  expect_error<InvalidArgument>(
      [] { Conv2D({.in_channels = 3, .filters = 4, .kernel_size = 3, .groups = 2}); },
      {"input channels must be evenly divisible", "groups=2", "3 channels"});
  expect_error<InvalidArgument>([] { Conv2D({.filters = 4, .kernel_size = 3, .groups = 0}); },
                                {"groups must be a positive integer", "groups=0"});
  DepthwiseConv2D dw({.in_channels = 2, .kernel_size = 5});
  expect_error<InvalidArgument>(
      [&] {
        dw(ag::Variable(Tensor::zeros({1, 4, 4, 2})));
      },
      {"Computed output size would be zero or negative", "inputs shape=(1, 4, 4, 2)",
       "padding=valid"});
  expect_error<InvalidArgument>(
      [&] {
        dw(ag::Variable(Tensor::zeros({4, 4, 2})));
      },
      {"expected ndim=4, found ndim=3"});
  // Keras 3 accepts strides > 1 with dilation > 1 for depthwise layers (see the
  // dw_s2_d2_valid fixture), so convkit does too.
  EXPECT_NO_THROW(DepthwiseConv2D({.kernel_size = 3, .strides = 2, .dilation_rate = 2}));
  DepthwiseConv2D same({.in_channels = 2, .kernel_size = 3, .padding = "SAME"});  // any case
  EXPECT_EQ(same.compute_output_shape({1, 5, 5, 2}), (Shape{1, 5, 5, 2}));
  expect_error<InvalidArgument>(
      [&] {
        same.set_weights({Tensor::zeros({3, 3, 2, 1})});
      },
      {"weight list of length 1", "expecting 2 weights"});
  expect_error<InvalidArgument>(
      [&] {
        same.set_weights({Tensor::zeros({3, 3, 2, 2}), Tensor::zeros({2})});
      },
      {"kernel weight shape (3, 3, 2, 1)", "provided weight shape (3, 3, 2, 2)"});
}

}  // namespace
}  // namespace convkit::nn::keras
