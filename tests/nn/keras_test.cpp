// Keras layers against TensorFlow: outputs, input and weight gradients, count_params,
// initialization bounds, a training step, gradchecks and Keras' validation messages.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

#include "convkit/autograd/functional.hpp"
#include "convkit/autograd/gradcheck.hpp"
#include "convkit/io/safetensors.hpp"
#include "convkit/nn/nn.hpp"
#include "nn/keras_common.hpp"
#include "nn/nn_fixture_util.hpp"
#include "test_util.hpp"

namespace convkit::nn::keras {
namespace {

using I = std::int64_t;
using Factory = std::function<std::shared_ptr<KerasLayer>(I in, DType dtype)>;

io::SafetensorsFile keras_fixture(const std::string& name) {
  return io::load_safetensors(std::string(CONVKIT_FIXTURE_DIR) + "/keras/" + name + ".safetensors");
}

template <typename L, typename O>
Factory make(O o) {
  return [o](I in, DType dtype) mutable {
    o.in_channels = in;
    o.dtype = dtype;
    return std::make_shared<L>(o);
  };
}

/// The same layers as CASES in tools/fixtures/make_keras_fixtures.py, by fixture name.
const std::map<std::string, Factory>& cases() {
  using DW = DepthwiseConv2DOpts;
  using SEP = SeparableConv2DOpts;
  using CONV = Conv2DOpts;
  static const std::map<std::string, Factory> table{
      {"dw_m1_same_s1", make<DepthwiseConv2D>(DW{.kernel_size = 3, .padding = "same"})},
      {"dw_m2_valid", make<DepthwiseConv2D>(DW{.kernel_size = 3, .depth_multiplier = 2})},
      {"dw_same_s2_odd",
       make<DepthwiseConv2D>(DW{.kernel_size = 3, .strides = 2, .padding = "same"})},
      {"dw_same_s2_even",
       make<DepthwiseConv2D>(DW{.kernel_size = 3, .strides = 2, .padding = "same"})},
      {"dw_same_k4x3_s2",
       make<DepthwiseConv2D>(
           DW{.kernel_size = {4, 3}, .strides = 2, .padding = "same", .depth_multiplier = 2})},
      {"dw_dilation2_nobias", make<DepthwiseConv2D>(DW{.kernel_size = 3,
                                                       .padding = "same",
                                                       .depth_multiplier = 2,
                                                       .dilation_rate = 2,
                                                       .use_bias = false})},
      {"dw_s2_d2_valid",
       make<DepthwiseConv2D>(DW{.kernel_size = 3, .strides = 2, .dilation_rate = 2})},
      {"dw_channels_first", make<DepthwiseConv2D>(DW{.kernel_size = 3,
                                                     .strides = 2,
                                                     .padding = "same",
                                                     .depth_multiplier = 2,
                                                     .data_format = "channels_first"})},
      {"sep_same_m2",
       make<SeparableConv2D>(
           SEP{.filters = 5, .kernel_size = 3, .padding = "same", .depth_multiplier = 2})},
      {"sep_s2_valid_nobias",
       make<SeparableConv2D>(SEP{.filters = 4, .kernel_size = 3, .strides = 2, .use_bias = false})},
      {"sep_same_s2_d1_even",
       make<SeparableConv2D>(
           SEP{.filters = 3, .kernel_size = {3, 2}, .strides = 2, .padding = "same"})},
      {"sep_dilation2",
       make<SeparableConv2D>(
           SEP{.filters = 4, .kernel_size = 3, .padding = "same", .dilation_rate = 2})},
      {"sep_channels_first", make<SeparableConv2D>(SEP{.filters = 4,
                                                       .kernel_size = 3,
                                                       .padding = "same",
                                                       .data_format = "channels_first",
                                                       .depth_multiplier = 2})},
      {"conv_groups2",
       make<Conv2D>(CONV{.filters = 6, .kernel_size = 3, .padding = "same", .groups = 2})},
      {"conv_same_s2_even",
       make<Conv2D>(CONV{.filters = 4, .kernel_size = 3, .strides = 2, .padding = "same"})},
      {"conv_valid_d2_nobias",
       make<Conv2D>(
           CONV{.filters = 3, .kernel_size = {3, 2}, .dilation_rate = 2, .use_bias = false})},
      {"conv_channels_first_g3", make<Conv2D>(CONV{.filters = 6,
                                                   .kernel_size = 3,
                                                   .strides = 2,
                                                   .padding = "same",
                                                   .data_format = "channels_first",
                                                   .groups = 3})},
  };
  return table;
}

class KerasFixture : public ::testing::TestWithParam<std::string> {};

// Loads the fixture's weights into the convkit layer built in `dtype`, runs forward and
// backward of sum(out * R), and compares with TensorFlow's float64 results.
void check_case(const std::string& name, DType dtype, double rtol, double atol) {
  SCOPED_TRACE(name + (dtype == DType::F32 ? " float32" : " float64"));
  const io::SafetensorsFile f = keras_fixture(name);
  const Tensor x = f.at("x");
  const bool last = f.metadata.at("config").find("channels_first") == std::string::npos;
  const auto layer = cases().at(name)(last ? x.size(3) : x.size(1), dtype);
  std::vector<Tensor> weights;
  for (const auto& [key, t] : test::with_prefix(f, "w.")) weights.push_back(t);
  layer->set_weights(weights);
  EXPECT_EQ(layer->count_params(), static_cast<I>(f.at("count_params").get({})));
  EXPECT_EQ(layer->compute_output_shape(x.shape()), f.at("out").shape());

  ag::Variable xv(x.to(dtype), true);
  const ag::Variable out = (*layer)(xv);
  test::expect_close(out.value(), f.at("out"), rtol, atol, "out");
  ag::sum(ag::mul(out, ag::Variable(f.at("R").to(dtype)))).backward();
  test::expect_close(xv.grad(), f.at("grad.x"), rtol, atol, "grad.x");
  for (const auto& [key, p] : layer->named_parameters())
    test::expect_close(p.grad(), f.at("grad." + key), rtol, atol, "grad." + key);
}

TEST_P(KerasFixture, MatchesTensorFlowFloat32) { check_case(GetParam(), DType::F32, 1e-4, 2e-5); }
TEST_P(KerasFixture, MatchesTensorFlowFloat64) { check_case(GetParam(), DType::F64, 1e-10, 1e-12); }

// Default initialization: kernels inside Keras' glorot_uniform limit (computed by Keras for
// the same shape) and spread across it; biases zero.
TEST_P(KerasFixture, InitializesWithKerasGlorotBounds) {
  const io::SafetensorsFile f = keras_fixture(GetParam());
  const Tensor x = f.at("x");
  const bool last = f.metadata.at("config").find("channels_first") == std::string::npos;
  manual_seed(5);
  const auto layer = cases().at(GetParam())(last ? x.size(3) : x.size(1), DType::F32);
  for (const auto& [key, p] : layer->named_parameters()) {
    double biggest = 0;
    for (double v : p.value().to_vector()) biggest = std::max(biggest, std::abs(v));
    if (key == "bias") {
      EXPECT_EQ(biggest, 0.0) << key;
      continue;
    }
    const double limit = f.at("init_limit." + key).get({});
    EXPECT_LE(biggest, limit) << key;
    EXPECT_GT(biggest, 0.5 * limit) << key << " (" << p.numel() << " values)";
  }
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : cases()) names.push_back(name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Keras, KerasFixture, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(Keras, CountParamsEqualKeras) {
  const io::SafetensorsFile f = keras_fixture("counts");
  const auto count = [&](const char* key) { return static_cast<I>(f.at(key).get({})); };
  DepthwiseConv2D dw({.in_channels = 3, .kernel_size = 3, .use_bias = false});
  EXPECT_EQ(dw.count_params(), 27);
  EXPECT_EQ(dw.count_params(), count("dw3x3_c3_nobias"));
  EXPECT_EQ(count_params(dw).total, 27);
  DepthwiseConv2D dw2({.in_channels = 32, .kernel_size = 3, .depth_multiplier = 2});
  EXPECT_EQ(dw2.count_params(), count("dw3x3_c32_m2"));
  SeparableConv2D sep({.in_channels = 64, .filters = 128, .kernel_size = 3});
  EXPECT_EQ(sep.count_params(), 8896);
  EXPECT_EQ(sep.count_params(), count("sep3x3_64_128"));
  EXPECT_EQ(count_params(sep).trainable, 8896);
  SeparableConv2D sep_nb({.in_channels = 64, .filters = 128, .kernel_size = 3, .use_bias = false});
  EXPECT_EQ(sep_nb.count_params(), count("sep3x3_64_128_nobias"));
  Conv2D conv({.in_channels = 32, .filters = 64, .kernel_size = 3, .groups = 4});
  EXPECT_EQ(conv.count_params(), count("conv3x3_32_64_g4"));
}

TEST(Keras, BuildLaterFromTheInputShape) {
  SeparableConv2D sep({.filters = 8, .kernel_size = 3, .padding = "same"});
  EXPECT_FALSE(sep.built());
  EXPECT_TRUE(sep.parameters().empty());
  test::expect_error<InvalidArgument>([&] { (void)sep.count_params(); },
                                      {"count_params", "isn't built", "layer.build"});
  test::expect_error<InvalidArgument>(
      [&] {
        sep(ag::Variable(Tensor::zeros({1, 5, 5, 4})));
      },
      {"SeparableConv2D", "not built", "build(input_shape)", "(1, 5, 5, 4)"});
  sep.build({2, 5, 5, 4});
  EXPECT_EQ(sep.in_channels(), 4);
  EXPECT_EQ(sep.count_params(), 4 * 9 + 4 * 8 + 8);
  sep.build({7, 9, 9, 4});  // same channels: nothing changes
  EXPECT_EQ(sep.parameters().size(), 3u);
  test::expect_error<InvalidArgument>(
      [&] {
        sep.build({1, 5, 5, 3});
      },
      {"built for 4 input channels", "(1, 5, 5, 3)"});
  const ag::Variable y = sep(ag::Variable(Tensor::uniform({2, 5, 5, 4}, -1, 1, 3)));
  EXPECT_EQ(y.shape(), (Shape{2, 5, 5, 8}));
  test::expect_error<InvalidArgument>(
      [&] {
        sep(ag::Variable(Tensor::zeros({1, 5, 5, 3})));
      },
      {"expected axis -1 of input shape to have value 4", "(1, 5, 5, 3)"});
  Conv2D cf({.filters = 2, .kernel_size = 1, .data_format = "channels_first"});
  cf.build({1, 6, 4, 4});
  EXPECT_EQ(cf.compute_output_shape({3, 6, 7, 5}), (Shape{3, 2, 7, 5}));
}

// The NHWC path views memory instead of copying: the output and the input gradient come back
// as contiguous NHWC tensors.
TEST(Keras, ChannelsLastOutputsAreDenseNhwc) {
  DepthwiseConv2D dw(
      {.in_channels = 4, .kernel_size = 3, .strides = 2, .padding = "same", .depth_multiplier = 2});
  ag::Variable x(Tensor::uniform({2, 9, 8, 4}, -1, 1, 1), true);
  const ag::Variable y = dw(x);
  EXPECT_EQ(y.shape(), (Shape{2, 5, 4, 8}));
  EXPECT_TRUE(y.value().is_contiguous());
  ag::sum(y).backward();
  EXPECT_TRUE(x.grad().is_contiguous());

  // Underneath: the NHWC input is viewed as channels-last NCHW (same storage), the
  // convolution runs channels-last, and its output is viewed back (same storage again).
  const detail::Geo geo = detail::parse_geo("test", 3, 1, 1, "same", "channels_last");
  const ag::Variable xc = detail::to_nchw(x, geo);
  EXPECT_EQ(xc.value().storage(), x.value().storage());
  EXPECT_EQ(xc.shape(), (Shape{2, 4, 9, 8}));
  EXPECT_EQ(xc.value().memory_format(), MemoryFormat::ChannelsLast);
  const ag::Variable yc =
      ag::conv2d(xc, detail::depthwise_kernel_view(dw.kernel), dw.bias, geo.conv_options(4));
  EXPECT_EQ(yc.value().memory_format(), MemoryFormat::ChannelsLast);
  const ag::Variable yl = detail::from_nchw(yc, geo);
  EXPECT_EQ(yl.value().storage(), yc.value().storage());
  EXPECT_EQ(yl.value().at<float>({1, 3, 2, 5}), yc.value().at<float>({1, 5, 3, 2}));
}

// Inputs that are not dense NHWC (a narrowed view) or whose views are ambiguous (one
// channel: NHWC and NCHW coincide) take a copy where needed and give the same numbers as the
// PyTorch-layout layer on permuted copies, gradients included.
TEST(Keras, StridedAndSingleChannelInputs) {
  for (const I channels : {I{1}, I{3}}) {
    SCOPED_TRACE(channels);
    DepthwiseConv2D k({.in_channels = channels,
                       .kernel_size = 3,
                       .strides = 2,
                       .padding = "same",
                       .depth_multiplier = 2});
    std::vector<Tensor> w = k.get_weights();
    w[1] = Tensor::uniform({2 * channels}, -1, 1, 3);
    k.set_weights(w);
    nn::DepthwiseConv2d t(
        {.channels = channels, .multiplier = 2, .stride = 2, .padding = Padding::same()});
    load_keras_depthwise(t, w);
    const Tensor big = Tensor::uniform({2, 9, 11, channels}, -1, 1, 4);
    ag::Variable x(big.narrow(2, 1, 9), true);  // (2, 9, 9, C), rows 11 elements apart
    ag::Variable xt(x.value().clone(MemoryFormat::Contiguous), true);
    const ag::Variable y = k(x);
    const ag::Variable yt = ag::permute(t(ag::permute(xt, {0, 3, 1, 2})), {0, 2, 3, 1});
    test::expect_close(y.value(), yt.value(), 1e-6, 1e-6, "out");
    const Tensor r = Tensor::uniform(y.shape(), -1, 1, 5);
    ag::sum(ag::mul(y, ag::Variable(r))).backward();
    ag::sum(ag::mul(yt, ag::Variable(r))).backward();
    test::expect_close(x.grad(), xt.grad(), 1e-6, 1e-6, "grad.x");
    test::expect_close(k.kernel.grad(), depthwise_kernel_from_torch(t.weight.grad(), 2), 1e-5, 1e-6,
                       "grad.kernel");
  }
}

// One SGD step on the Keras-layout parameters lowers the loss of a fixed target: the
// gradients reach kernel, pointwise kernel and bias in their Keras shapes.
TEST(Keras, TrainingStepReachesKerasWeights) {
  manual_seed(11);
  SeparableConv2D sep({.in_channels = 3,
                       .filters = 4,
                       .kernel_size = 3,
                       .strides = 2,
                       .padding = "same",
                       .depth_multiplier = 2});
  const ag::Variable x(Tensor::uniform({4, 9, 9, 3}, -1, 1, 2));
  const ag::Variable target(Tensor::uniform({4, 5, 5, 4}, -1, 1, 3));
  auto loss = [&] { return ag::mse_loss(sep(x), target); };
  const ag::Variable l0 = loss();
  l0.backward();
  for (const auto& [key, p] : sep.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << key;
    EXPECT_EQ(p.grad().shape(), p.shape()) << key;
    double norm = 0;
    for (double v : p.grad().to_vector()) norm += v * v;
    EXPECT_GT(norm, 0.0) << key;
    Tensor next = p.value().clone();
    for (I i = 0; i < next.numel(); ++i)
      next.set_flat(i, next.get_flat(i) - 0.1 * p.grad().get_flat(i));
    p.set_value(next);
  }
  EXPECT_LT(loss().value().get({}), l0.value().get({}));
}

}  // namespace
}  // namespace convkit::nn::keras
