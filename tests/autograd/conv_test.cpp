// gradcheck of every convolution variant through the autograd path (float64).
#include <gtest/gtest.h>

#include <string>

#include "autograd/ag_test_util.hpp"
#include "convkit/ops/conv.hpp"
#include "test_util.hpp"

namespace convkit::ag {
namespace {

using test::expect_gradcheck;
using test::rnd;

struct ConvCase {
  std::string name;
  Shape x, w;
  bool bias;
  ConvOptions options;
  bool transposed = false;
  MemoryFormat format = MemoryFormat::Contiguous;
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.name; }

Variable run(const ConvCase& c, const Variable& x, const Variable& w, const Variable& b) {
  const int rank = c.x.rank();
  if (c.transposed) {
    if (rank == 3) return conv_transpose1d(x, w, b, c.options);
    if (rank == 4) return conv_transpose2d(x, w, b, c.options);
    return conv_transpose3d(x, w, b, c.options);
  }
  if (rank == 3) return conv1d(x, w, b, c.options);
  if (rank == 4) return conv2d(x, w, b, c.options);
  return conv3d(x, w, b, c.options);
}

class AgConvGradcheck : public testing::TestWithParam<ConvCase> {};

TEST_P(AgConvGradcheck, AllInputs) {
  const ConvCase& c = GetParam();
  Variable x(Tensor::uniform(c.x, -1, 1, 11, DType::F64, c.format), true);
  Variable w = rnd(c.w, 12);
  const std::int64_t oc = c.transposed ? c.w[1] * c.options.groups : c.w[0];
  Variable b = c.bias ? rnd({oc}, 13) : Variable();
  // The forward result equals the ops-level one-call form.
  const Variable y = run(c, x, w, b);
  EXPECT_EQ(y.value().memory_format(), c.format);
  expect_gradcheck([&](const std::vector<Variable>& v) { return run(c, v[0], v[1], v[2]); },
                   {x, w, b});
}

ConvOptions opts(std::vector<std::int64_t> stride, Padding padding, std::vector<std::int64_t> dilation,
                 std::int64_t groups, PaddingMode mode = PaddingMode::Zeros,
                 std::vector<std::int64_t> output_padding = {0}) {
  ConvOptions o;
  o.stride = std::move(stride);
  o.padding = std::move(padding);
  o.dilation = std::move(dilation);
  o.groups = groups;
  o.padding_mode = mode;
  o.output_padding = std::move(output_padding);
  return o;
}

const MemoryFormat CL = MemoryFormat::ChannelsLast;

INSTANTIATE_TEST_SUITE_P(
    Autograd, AgConvGradcheck,
    testing::Values(
        ConvCase{"conv1d_k3_p1_bias", {2, 3, 7}, {4, 3, 3}, true, opts({1}, 1, {1}, 1)},
        ConvCase{"conv1d_s2_d2_nobias", {2, 2, 9}, {3, 2, 3}, false, opts({2}, 0, {2}, 1)},
        ConvCase{"conv1d_same_k4", {1, 2, 6}, {2, 2, 4}, true, opts({1}, Padding::same(), {1}, 1)},
        ConvCase{"conv1d_reflect", {1, 2, 6}, {2, 2, 3}, true,
                 opts({1}, 2, {1}, 1, PaddingMode::Reflect)},
        ConvCase{"conv1d_channels_last", {2, 3, 6}, {2, 3, 3}, true, opts({1}, 1, {1}, 1), false, CL},
        ConvCase{"conv2d_k3_p1", {2, 3, 5, 5}, {4, 3, 3, 3}, true, opts({1}, 1, {1}, 1)},
        ConvCase{"conv2d_groups2_s2", {1, 4, 6, 6}, {4, 2, 3, 3}, true, opts({2}, 1, {1}, 2)},
        ConvCase{"conv2d_depthwise", {2, 3, 5, 5}, {3, 1, 3, 3}, true, opts({1}, 1, {1}, 3)},
        ConvCase{"conv2d_depthwise_mult2", {1, 3, 5, 5}, {6, 1, 3, 3}, true, opts({1}, 1, {1}, 3)},
        ConvCase{"conv2d_dilation2", {1, 2, 7, 7}, {2, 2, 3, 3}, false, opts({1}, 2, {2}, 1)},
        ConvCase{"conv2d_same_s1_k4", {1, 2, 5, 5}, {2, 2, 4, 4}, true,
                 opts({1}, Padding::same(), {1}, 1)},
        ConvCase{"conv2d_same_s2_keras", {1, 2, 6, 7}, {3, 2, 3, 3}, true,
                 opts({2}, Padding::same(), {1}, 1)},
        ConvCase{"conv2d_valid", {1, 2, 5, 4}, {2, 2, 2, 3}, true, opts({1}, Padding::valid(), {1}, 1)},
        ConvCase{"conv2d_asymmetric", {1, 2, 4, 5}, {2, 2, 3, 3}, true,
                 opts({1}, Padding::asymmetric({0, 1}, {2, 0}), {1}, 1)},
        ConvCase{"conv2d_reflect", {1, 2, 5, 5}, {2, 2, 3, 3}, true,
                 opts({1}, 1, {1}, 1, PaddingMode::Reflect)},
        ConvCase{"conv2d_replicate_s2", {1, 2, 5, 5}, {2, 2, 3, 3}, true,
                 opts({2}, 2, {1}, 1, PaddingMode::Replicate)},
        ConvCase{"conv2d_circular_dw", {1, 2, 4, 4}, {2, 1, 3, 3}, true,
                 opts({1}, 1, {1}, 2, PaddingMode::Circular)},
        ConvCase{"conv2d_pointwise", {2, 4, 3, 3}, {3, 4, 1, 1}, true, opts({1}, 0, {1}, 1)},
        ConvCase{"conv2d_channels_last_dw", {2, 4, 5, 5}, {8, 1, 3, 3}, true, opts({2}, 1, {1}, 4),
                 false, CL},
        ConvCase{"conv2d_channels_last_reflect", {1, 3, 5, 5}, {2, 3, 3, 3}, true,
                 opts({1}, 1, {1}, 1, PaddingMode::Reflect), false, CL},
        ConvCase{"conv3d_k3_p1", {1, 2, 4, 4, 4}, {2, 2, 3, 3, 3}, true, opts({1}, 1, {1}, 1)},
        ConvCase{"conv3d_groups_s2_replicate", {1, 4, 5, 4, 4}, {2, 2, 2, 3, 2}, true,
                 opts({2, 1, 2}, 1, {1}, 2, PaddingMode::Replicate)},
        ConvCase{"conv3d_channels_last", {1, 3, 3, 4, 4}, {2, 3, 2, 2, 2}, false, opts({1}, 0, {1}, 1),
                 false, CL},
        ConvCase{"convT1d_s2_op1", {2, 3, 4}, {3, 2, 3}, true, opts({2}, 1, {1}, 1, PaddingMode::Zeros, {1}),
                 true},
        ConvCase{"convT2d_s2_op1_groups", {1, 4, 3, 3}, {4, 1, 3, 3}, true,
                 opts({2}, 1, {1}, 2, PaddingMode::Zeros, {1}), true},
        ConvCase{"convT2d_dilation", {1, 2, 3, 4}, {2, 3, 2, 3}, false, opts({1}, 0, {2}, 1), true},
        ConvCase{"convT2d_channels_last", {1, 3, 3, 3}, {3, 2, 3, 3}, true,
                 opts({2}, 1, {1}, 1, PaddingMode::Zeros, {1}), true, CL},
        ConvCase{"convT3d_s2", {1, 2, 2, 3, 2}, {2, 2, 2, 2, 2}, true,
                 opts({2}, 0, {1}, 1, PaddingMode::Zeros, {1, 0, 1}), true}),
    [](const testing::TestParamInfo<ConvCase>& p) { return p.param.name; });

TEST(ConvAutograd, ForwardMatchesTheOpsLevelCall) {
  const Tensor x = Tensor::uniform({2, 4, 6, 6}, -1, 1, 1), w = Tensor::uniform({8, 1, 3, 3}, -1, 1, 2);
  const ConvOptions o = opts({1}, 1, {1}, 4);
  const Variable y = conv2d(Variable(x, true), Variable(w, true), {}, o);
  EXPECT_TRUE(allclose(y.value(), convkit::conv2d(x, w, {}, o), 0, 0));
}

TEST(ConvAutograd, RefusesTheWrongRank) {
  const Variable x = rnd({1, 2, 5, 5}, 1), w = rnd({2, 2, 3}, 2);
  EXPECT_THROW(conv1d(x, w), InvalidArgument);
  convkit::test::expect_error<InvalidArgument>([&] { conv2d(x, rnd({2, 3, 3, 3}, 2)); },
                                               {"conv2d:", "[2, 3, 3, 3]"});
  convkit::test::expect_error<InvalidArgument>(
      [&] { conv_transpose2d(x, rnd({3, 2, 3, 3}, 2)); }, {"conv_transpose2d:", "[3, 2, 3, 3]"});
}

}  // namespace
}  // namespace convkit::ag
