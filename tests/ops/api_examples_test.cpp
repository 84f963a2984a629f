// The snippets of docs/api.md, run and checked, so the documentation cannot drift.
#include <gtest/gtest.h>

#include <algorithm>

#include "convkit/convkit.hpp"

namespace convkit {
namespace {

void expect_close(const Tensor& a, const Tensor& b, double tol = 1e-5) {
  const CloseResult r = allclose(a, b, tol, tol);
  EXPECT_TRUE(r) << r.message;
}

TEST(ApiExamples, DepthwiseWithMultiplier) {
  const Tensor x = Tensor::uniform({1, 3, 8, 8}, -1, 1, 1);
  const Tensor w = Tensor::uniform({3 * 2, 1, 3, 3}, -1, 1, 2);
  const Tensor y = conv2d(x, w, {}, {.padding = 1, .groups = 3});
  ASSERT_EQ(y.shape(), (Shape{1, 6, 8, 8}));
  // Output channel 5 is input channel 2 filtered by kernel 5 alone.
  const Tensor y5 = conv2d(x.narrow(1, 2, 1), w.narrow(0, 5, 1), {}, {.padding = 1});
  expect_close(y.narrow(1, 5, 1), y5);
}

TEST(ApiExamples, DepthwiseSeparable) {
  const Tensor dw = Tensor::uniform({32, 1, 3, 3}, -1, 1, 3);
  const Tensor pw = Tensor::uniform({64, 32, 1, 1}, -1, 1, 4);
  const Tensor x = Tensor::uniform({1, 32, 16, 16}, -1, 1, 5);
  const Tensor y = conv2d(conv2d(x, dw, {}, {.padding = 1, .groups = 32}), pw);
  EXPECT_EQ(y.shape(), (Shape{1, 64, 16, 16}));
}

TEST(ApiExamples, SpatiallySeparableEqualsOuterProductKernel) {
  const Tensor x = Tensor::uniform({2, 4, 9, 7}, -1, 1, 10, DType::F64);
  const Tensor col = Tensor::uniform({4, 1, 5, 1}, -1, 1, 6, DType::F64);
  const Tensor row = Tensor::uniform({4, 1, 1, 5}, -1, 1, 7, DType::F64);
  const Tensor h = conv2d(x, col, {}, {.padding = {2, 0}, .groups = 4});
  const Tensor y = conv2d(h, row, {}, {.padding = {0, 2}, .groups = 4});
  Tensor full = Tensor::zeros({4, 1, 5, 5}, DType::F64);
  for (std::int64_t c = 0; c < 4; ++c)
    for (std::int64_t i = 0; i < 5; ++i)
      for (std::int64_t j = 0; j < 5; ++j)
        full.set({c, 0, i, j}, col.get({c, 0, i, 0}) * row.get({c, 0, 0, j}));
  expect_close(y, conv2d(x, full, {}, {.padding = 2, .groups = 4}), 1e-12);
}

TEST(ApiExamples, DilatedKeepsSize) {
  const Tensor x = Tensor::uniform({1, 2, 10, 10}, -1, 1, 11);
  const Tensor w3 = Tensor::uniform({2, 2, 3, 3}, -1, 1, 12);
  EXPECT_EQ(conv2d(x, w3, {}, {.padding = 2, .dilation = {2}}).shape(), (Shape{1, 2, 10, 10}));
}

TEST(ApiExamples, GroupedSeesOnlyItsGroup) {
  const Tensor x12 = Tensor::uniform({1, 12, 6, 6}, -1, 1, 13, DType::F64);
  const Tensor w = Tensor::uniform({6, 4, 3, 3}, -1, 1, 8, DType::F64);
  const Tensor y = conv2d(x12, w, {}, {.groups = 3});
  ASSERT_EQ(y.shape(), (Shape{1, 6, 4, 4}));
  // Output channel 3 is in group 1: input channels 4..7 with its own 4 kernel slices.
  expect_close(y.narrow(1, 3, 1), conv2d(x12.narrow(1, 4, 4), w.narrow(0, 3, 1)), 1e-12);
}

TEST(ApiExamples, SameWithStride2) {
  const Tensor w = Tensor::zeros({3, 3, 3, 3});
  const ConvProblem p7 = ConvProblem::make(Tensor::zeros({1, 3, 7, 7}), w, {},
                                           {.stride = {2}, .padding = Padding::same()});
  EXPECT_EQ(p7.pad_before, (std::array<std::int64_t, 3>{1, 1, 0}));
  EXPECT_EQ(p7.pad_after, (std::array<std::int64_t, 3>{1, 1, 0}));
  EXPECT_EQ(p7.dst_shape(), (Shape{1, 3, 4, 4}));
  const ConvProblem p8 = ConvProblem::make(Tensor::zeros({1, 3, 8, 8}), w, {},
                                           {.stride = {2}, .padding = Padding::same()});
  EXPECT_EQ(p8.pad_before, (std::array<std::int64_t, 3>{0, 0, 0}));
  EXPECT_EQ(p8.pad_after, (std::array<std::int64_t, 3>{1, 1, 0}));
  EXPECT_EQ(p8.dst_shape(), (Shape{1, 3, 4, 4}));
}

TEST(ApiExamples, Transposed) {
  const Tensor x16 = Tensor::uniform({2, 16, 7, 7}, -1, 1, 14);
  const Tensor w = Tensor::uniform({16, 8, 3, 3}, -1, 1, 9);
  const Tensor y = conv_transpose2d(x16, w, {}, {.stride = {2}, .padding = 1, .output_padding = {1}});
  EXPECT_EQ(y.shape(), (Shape{2, 8, 14, 14}));
}

TEST(ApiExamples, ReadmeTour) {
  const Tensor x =
      Tensor::uniform({8, 32, 56, 56}, -1, 1, 1).to(MemoryFormat::ChannelsLast);
  const Tensor w = Tensor::uniform({64, 1, 3, 3}, -1, 1, 2);
  const Tensor b = Tensor::zeros({64});
  const ConvProblem p =
      ConvProblem::make(x, w, b, {.stride = {2}, .padding = Padding::same(), .groups = 32});
  const Tensor y = conv_forward(p, x, w, b);
  EXPECT_EQ(y.shape(), (Shape{8, 64, 28, 28}));
  EXPECT_EQ(y.memory_format(), MemoryFormat::ChannelsLast);
  const Tensor dy = Tensor::ones(y.shape());
  EXPECT_EQ(conv_backward_data(p, dy, w).shape(), x.shape());
  EXPECT_EQ(conv_backward_weights(p, x, dy).shape(), w.shape());
  EXPECT_EQ(conv_backward_bias(p, dy).shape(), b.shape());
  const Tensor z = conv_transpose2d(y, Tensor::uniform({64, 16, 3, 3}, -1, 1, 3), {},
                                    {.stride = {2}, .padding = 1, .output_padding = {1}});
  EXPECT_EQ(z.shape(), (Shape{8, 16, 56, 56}));
}

TEST(ApiExamples, WhichKernelRunsAndForcingTheReference) {
  const Tensor x = Tensor::uniform({1, 32, 8, 8}, -1, 1, 20);
  const Tensor w_pointwise = Tensor::uniform({64, 32, 1, 1}, -1, 1, 21);
  const Tensor y = conv2d(x, w_pointwise);
  EXPECT_EQ(last_conv_kernel(), "conv_f32_nchw_1x1__gemm");
  force_conv_kernel("ref");
  const Tensor y_ref = conv2d(x, w_pointwise);
  EXPECT_EQ(last_conv_kernel(), "conv_f32__ref");
  force_conv_kernel("");
  expect_close(y, y_ref);
  set_conv_trace(true);
  ::testing::internal::CaptureStderr();
  conv2d(x, w_pointwise);
  const std::string line = ::testing::internal::GetCapturedStderr();
  set_conv_trace(false);
  EXPECT_EQ(line,
            "convkit: fwd g1mb1ic32ih8iw8oc64oh8ow8kh1kw1sh1sw1ph0pw0dh0dw0 -> "
            "conv_f32_nchw_1x1__gemm\n");
  const std::vector<std::string> all = conv_kernel_names("f32");
  EXPECT_NE(std::find(all.begin(), all.end(), "conv_f32_nchw_1x1__gemm"), all.end());
  EXPECT_EQ(all.back(), "conv_f32__ref");
}

}  // namespace
}  // namespace convkit
