// One test per rule ConvProblem enforces: each checks the exception and that its message
// names the argument and the values.
#include <gtest/gtest.h>

#include <limits>

#include "convkit/ops/conv.hpp"
#include "test_util.hpp"

namespace convkit {
namespace {

using test::expect_error;
constexpr bool kT = true;  // transposed

ConvProblem make2d(Shape src, Shape wei, ConvOptions o = {}, std::optional<Shape> bias = {},
                   bool transposed = false) {
  return ConvProblem::make(src, wei, bias, o, transposed);
}

TEST(ConvValidation, NonPositiveStride) {
  expect_error<InvalidArgument>([] { make2d({1, 4, 8, 8}, {4, 4, 3, 3}, {.stride = {0}}); },
                                {"stride must be positive", "[0, 0]"});
  expect_error<InvalidArgument>([] { make2d({1, 4, 8, 8}, {4, 4, 3, 3}, {.stride = {1, -2}}); },
                                {"stride must be positive", "[1, -2]"});
}

TEST(ConvValidation, NonPositiveDilation) {
  expect_error<InvalidArgument>([] { make2d({1, 4, 8, 8}, {4, 4, 3, 3}, {.dilation = {0}}); },
                                {"dilation must be positive", "[0, 0]"});
}

TEST(ConvValidation, NonPositiveGroups) {
  expect_error<InvalidArgument>([] { make2d({1, 4, 8, 8}, {4, 4, 3, 3}, {.groups = 0}); },
                                {"groups must be positive", "got 0"});
  expect_error<InvalidArgument>([] { make2d({1, 4, 8, 8}, {4, 4, 3, 3}, {.groups = -2}); },
                                {"groups must be positive", "got -2"});
}

TEST(ConvValidation, NegativePadding) {
  expect_error<InvalidArgument>([] { make2d({1, 4, 8, 8}, {4, 4, 3, 3}, {.padding = -1}); },
                                {"padding must be non-negative", "[-1, -1]"});
  expect_error<InvalidArgument>(
      [] { make2d({1, 4, 8, 8}, {4, 4, 3, 3}, {.padding = Padding::asymmetric({0, 1}, {2, -3})}); },
      {"padding must be non-negative", "[2, -3]"});
}

TEST(ConvValidation, InChannelsNotDivisibleByGroups) {
  expect_error<InvalidArgument>([] { make2d({1, 6, 8, 8}, {8, 1, 3, 3}, {.groups = 4}); },
                                {"in_channels 6", "not divisible by groups 4"});
}

TEST(ConvValidation, OutChannelsNotDivisibleByGroups) {
  expect_error<InvalidArgument>([] { make2d({1, 8, 8, 8}, {6, 2, 3, 3}, {.groups = 4}); },
                                {"out_channels 6", "not divisible by groups 4"});
}

TEST(ConvValidation, WeightChannelsDifferFromInPerGroup) {
  expect_error<InvalidArgument>([] { make2d({1, 8, 8, 8}, {8, 4, 3, 3}, {.groups = 4}); },
                                {"wei shape [8, 4, 3, 3]", "4 input channels per group",
                                 "in_channels 8 / groups 4 = 2"});
  // Transposed weights are (in, out/groups, k...): dimension 0 must equal in_channels.
  expect_error<InvalidArgument>([] { make2d({1, 8, 5, 5}, {4, 2, 3, 3}, {}, {}, kT); },
                                {"conv_transpose", "wei shape [4, 2, 3, 3]", "in_channels 8"});
}

TEST(ConvValidation, BiasLengthDiffersFromOutChannels) {
  expect_error<InvalidArgument>([] { make2d({1, 4, 8, 8}, {6, 4, 3, 3}, {}, Shape{4}); },
                                {"bias has shape [4]", "expected [6]"});
  expect_error<InvalidArgument>([] { make2d({1, 4, 8, 8}, {6, 4, 3, 3}, {}, Shape{6, 1}); },
                                {"bias has shape [6, 1]"});
}

TEST(ConvValidation, WrongRank) {
  expect_error<InvalidArgument>([] { make2d({4, 8, 8}, {4, 4, 3, 3}); },
                                {"wei has shape [4, 4, 3, 3] of rank 4", "src [4, 8, 8] has rank 3"});
  expect_error<InvalidArgument>([] { make2d({4, 8}, {4, 4}); },
                                {"src must have rank 3, 4 or 5", "shape [4, 8]"});
  // The one-call forms also check the rank their name promises.
  const Tensor x = Tensor::zeros({1, 2, 5, 5, 5});
  const Tensor w = Tensor::zeros({2, 2, 3, 3, 3});
  expect_error<InvalidArgument>([&] { conv2d(x, w); }, {"conv2d", "rank 4", "[1, 2, 5, 5, 5]"});
}

TEST(ConvValidation, OptionVectorOfWrongLength) {
  expect_error<InvalidArgument>([] { make2d({1, 4, 8, 8}, {4, 4, 3, 3}, {.stride = {1, 2, 3}}); },
                                {"stride has 3 values [1, 2, 3]", "takes 1 or 2"});
}

TEST(ConvValidation, NonPositiveKernel) {
  expect_error<InvalidArgument>([] { make2d({1, 4, 8, 8}, {4, 4, 0, 3}); },
                                {"kernel sizes must be positive", "[4, 4, 0, 3]"});
}

TEST(ConvValidation, EffectiveKernelLargerThanPaddedInput) {
  expect_error<InvalidArgument>(
      [] { make2d({1, 2, 4, 9}, {2, 2, 3, 3}, {.padding = {0, 0}, .dilation = {2}}); },
      {"effective kernel size 5", "dilation 2 x (kernel 3 - 1) + 1",
       "padded input size 4 (input 4 + padding 0 + 0)", "spatial dimension 0 (height)"});
  // Padding can make a kernel fit that is larger than the input itself.
  EXPECT_NO_THROW(make2d({1, 2, 2, 2}, {2, 2, 5, 5}, {.padding = 2}));
}

TEST(ConvValidation, ReflectPaddingNotSmallerThanInput) {
  expect_error<InvalidArgument>(
      [] { make2d({1, 2, 3, 8}, {2, 2, 3, 3}, {.padding = 3, .padding_mode = PaddingMode::Reflect}); },
      {"reflect padding (3, 3)", "smaller than the input size 3", "spatial dimension 0"});
}

TEST(ConvValidation, CircularPaddingLargerThanInput) {
  expect_error<InvalidArgument>(
      [] { make2d({1, 2, 8, 2}, {2, 2, 3, 3}, {.padding = 3, .padding_mode = PaddingMode::Circular}); },
      {"circular padding (3, 3)", "input size 2", "spatial dimension 1"});
  EXPECT_NO_THROW(make2d({1, 2, 8, 2}, {2, 2, 3, 3}, {.padding = 2, .padding_mode = PaddingMode::Circular}));
}

TEST(ConvValidation, OutputPaddingNotSmallerThanStrideOrDilation) {
  expect_error<InvalidArgument>(
      [] { make2d({1, 2, 4, 4}, {2, 2, 3, 3}, {.stride = {2}, .output_padding = {2}}, {}, kT); },
      {"output_padding 2", "smaller than either stride 2 or dilation 1"});
  // Smaller than the dilation is enough, as in PyTorch.
  EXPECT_NO_THROW(make2d({1, 2, 4, 4}, {2, 2, 3, 3},
                         {.stride = {1}, .dilation = {3}, .output_padding = {2}}, {}, kT));
  expect_error<InvalidArgument>(
      [] { make2d({1, 2, 4, 4}, {2, 2, 3, 3}, {.output_padding = {1}}); },
      {"output_padding [1, 1] is only for transposed"});
}

TEST(ConvValidation, TransposedOnlyWithZerosPaddingAndExplicitPadding) {
  expect_error<InvalidArgument>(
      [] { make2d({1, 2, 4, 4}, {2, 2, 3, 3}, {.padding_mode = PaddingMode::Reflect}, {}, kT); },
      {"padding_mode must be zeros", "reflect"});
  expect_error<InvalidArgument>(
      [] { make2d({1, 2, 4, 4}, {2, 2, 3, 3}, {.padding = Padding::same()}, {}, kT); },
      {"padding='same'"});
}

TEST(ConvValidation, TransposedOutputNotPositive) {
  expect_error<InvalidArgument>([] { make2d({1, 2, 1, 1}, {2, 2, 1, 1}, {.padding = 1}, {}, kT); },
                                {"output size -1 is not positive"});
}

TEST(ConvValidation, GradOutputShapeDiffersFromForwardOutput) {
  const Tensor x = Tensor::zeros({1, 2, 6, 6}, DType::F64);
  const Tensor w = Tensor::zeros({4, 2, 3, 3}, DType::F64);
  const ConvProblem p = ConvProblem::make(x, w, {}, {});
  const Tensor bad = Tensor::zeros({1, 4, 6, 6}, DType::F64);  // forward output is 4x4
  expect_error<InvalidArgument>([&] { conv_backward_data(p, bad, w); },
                                {"diff_dst has shape [1, 4, 6, 6]", "forward output has shape [1, 4, 4, 4]"});
  expect_error<InvalidArgument>([&] { conv_backward_weights(p, x, bad); }, {"diff_dst", "[1, 4, 4, 4]"});
  expect_error<InvalidArgument>([&] { conv_backward_bias(p, bad); }, {"diff_dst", "[1, 4, 4, 4]"});
}

TEST(ConvValidation, TensorsDisagreeWithProblem) {
  const Tensor x = Tensor::zeros({1, 2, 6, 6});
  const Tensor w = Tensor::zeros({4, 2, 3, 3});
  const ConvProblem p = ConvProblem::make(x, w, {}, {});
  expect_error<InvalidArgument>([&] { conv_forward(p, Tensor::zeros({1, 2, 7, 6}), w); },
                                {"src has shape [1, 2, 7, 6]", "[1, 2, 6, 6]"});
  expect_error<InvalidArgument>([&] { conv_forward(p, x.to(DType::F64), w); },
                                {"src has dtype F64", "problem is F32"});
  expect_error<InvalidArgument>([&] { conv_forward(p, x, w, Tensor::zeros({4})); },
                                {"problem was built without one"});
  expect_error<InvalidArgument>([&] { ConvProblem::make(x, w.to(DType::F64), {}, {}); },
                                {"wei has dtype F64 but src has F32"});
  expect_error<InvalidArgument>([&] { conv2d(x.to(DType::I64), w.to(DType::I64)); },
                                {"must be F32 or F64", "I64"});
}

TEST(ConvValidation, SizesThatOverflow) {
  constexpr std::int64_t big = std::int64_t{1} << 40;
  // The element count of src overflows int64.
  expect_error<InvalidArgument>([] { make2d({big, big, 1, 1}, {1, big, 1, 1}); },
                                {"overflows int64"});
  // The kernel extent dilation*(k-1)+1 overflows.
  expect_error<InvalidArgument>(
      [] { make2d({1, 1, 4, 4}, {1, 1, 3, 3}, {.dilation = {std::numeric_limits<std::int64_t>::max()}}); },
      {"overflows int64"});
  // Padding so large the padded size overflows.
  expect_error<InvalidArgument>(
      [] { make2d({1, 1, 4, 4}, {1, 1, 3, 3}, {.padding = std::numeric_limits<std::int64_t>::max()}); },
      {"overflows int64"});
  // Counted elements fit but bytes do not: 2^62 floats.
  expect_error<InvalidArgument>([] { make2d({1, 1, std::int64_t{1} << 31, std::int64_t{1} << 31}, {1, 1, 1, 1}); },
                                {"more bytes than int64 can count"});
  // Shapes themselves refuse negative sizes.
  expect_error<InvalidArgument>([] { Shape{1, -3, 4}; }, {"negative size -3"});
}

TEST(ConvValidation, HandEditedProblemIsRefused) {
  const Tensor x = Tensor::zeros({1, 4, 6, 6});
  const Tensor w = Tensor::zeros({4, 1, 3, 3});
  ConvProblem p = ConvProblem::make(x, w, {}, {.groups = 4});
  p.g = 0;
  expect_error<InvalidArgument>([&] { conv_forward(p, x, w); }, {"groups must be positive"});
  p.g = 4;
  p.out[0] = 5;  // not what stride, padding and kernel give
  expect_error<InvalidArgument>([&] { conv_forward(p, x, w); },
                                {"is inconsistent", "oh5", "oh4", "ConvProblem::make"});
  p.out[0] = 4;
  p.ndims = 7;
  expect_error<InvalidArgument>([&] { conv_backward_bias(p, x); }, {"ndims must be 1, 2 or 3, got 7"});
}

TEST(ConvValidation, EmptyBatchAndChannelsAreAccepted) {
  // Batch 0 and channel count 0 give empty outputs and zero gradients, like PyTorch.
  const Tensor x = Tensor::ones({0, 4, 5, 5}, DType::F64);
  const Tensor w = Tensor::ones({6, 2, 3, 3}, DType::F64);
  const Tensor b = Tensor::ones({6}, DType::F64);
  const ConvProblem p = ConvProblem::make(x, w, b, {.groups = 2});
  const Tensor y = conv_forward(p, x, w, b);
  EXPECT_EQ(y.shape(), (Shape{0, 6, 3, 3}));
  const Tensor gw = conv_backward_weights(p, x, y);
  EXPECT_EQ(gw.shape(), w.shape());
  for (double v : gw.to_vector()) EXPECT_EQ(v, 0.0);
  for (double v : conv_backward_bias(p, y).to_vector()) EXPECT_EQ(v, 0.0);
  EXPECT_EQ(conv_backward_data(p, y, w).shape(), x.shape());

  const Tensor x0 = Tensor::ones({2, 0, 5, 5}, DType::F64);
  const Tensor w0 = Tensor::ones({3, 0, 3, 3}, DType::F64);
  const ConvProblem q = ConvProblem::make(x0, w0, b.narrow(0, 0, 3), {});
  const Tensor y0 = conv_forward(q, x0, w0, b.narrow(0, 0, 3));
  EXPECT_EQ(y0.shape(), (Shape{2, 3, 3, 3}));
  for (double v : y0.to_vector()) EXPECT_EQ(v, 1.0);  // only the bias
  EXPECT_EQ(conv_backward_data(q, y0, w0).shape(), x0.shape());

  const Tensor w_out0 = Tensor::ones({0, 4, 3, 3}, DType::F64);
  const ConvProblem r = ConvProblem::make(Tensor::ones({1, 4, 5, 5}, DType::F64), w_out0, {}, {});
  const Tensor gx = conv_backward_data(r, Tensor::zeros({1, 0, 3, 3}, DType::F64), w_out0);
  for (double v : gx.to_vector()) EXPECT_EQ(v, 0.0);
}

}  // namespace
}  // namespace convkit
